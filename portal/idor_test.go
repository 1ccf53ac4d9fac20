package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
)

// TestNoCrossInstitutionAccess walks EVERY route under /i/{iid}/ (feature
// files included) and checks that a member of institution A:
//   - gets 404 on institution B's URLs (ids cannot even be probed), and
//   - gets 404/403 on A's URLs that name one of B's objects,
//
// and that nothing of B's changes.
func TestNoCrossInstitutionAccess(t *testing.T) {
	e := newTestEnv(t)
	adminA, instA := e.registerInst(1, "a@comune-a.example.it")
	adminB, instB := e.registerInst(2, "b@comune-b.example.it")
	// B has an invitation and a service, so object ids exist.
	adminB.post(fmt.Sprintf("/i/%d/members/invite", instB), url.Values{"email": {"x@comune-b.example.it"}, "role": {"operator"}})
	now := time.Now().UTC()
	if _, err := e.DB.W.Exec(`INSERT INTO services (public_id, institution_id, name, created_at) VALUES ('svcB0000000000000000001', ?, 'Servizio di B', ?)`, instB, now); err != nil {
		t.Fatal(err)
	}
	var uidB, invB int64
	_ = e.DB.R.Get(&uidB, `SELECT id FROM users WHERE email = 'b@comune-b.example.it'`)
	_ = e.DB.R.Get(&invB, `SELECT id FROM invitations WHERE institution_id = ?`, instB)
	objB := map[string]string{"uid": fmt.Sprint(uidB), "id": fmt.Sprint(invB), "sid": "svcB0000000000000000001"}

	snapshot := func() string {
		var parts []string
		for _, q := range []string{
			`SELECT group_concat(user_id || role) FROM memberships WHERE institution_id = ?`,
			`SELECT group_concat(id || coalesce(revoked_at, '') || coalesce(accepted_at, '')) FROM invitations WHERE institution_id = ?`,
			`SELECT group_concat(public_id || name || coalesce(suspended_at, '') || coalesce(deleted_at, '') || coalesce(working_version_id, '') || authorized_recipients) FROM services WHERE institution_id = ?`,
			`SELECT status FROM institutions WHERE id = ?`,
		} {
			var s *string
			if err := e.DB.R.Get(&s, q, instB); err != nil {
				t.Fatal(err)
			}
			if s != nil {
				parts = append(parts, *s)
			}
		}
		return strings.Join(parts, "|")
	}
	before := snapshot()

	varRE := regexp.MustCompile(`\{([a-z]+)(:[^}]*)?\}`)
	type route struct{ tpl, method string }
	var routes []route
	_ = e.App.Router().Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := r.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tpl, "/i/{iid") {
			return nil
		}
		methods, _ := r.GetMethods()
		for _, m := range methods {
			routes = append(routes, route{tpl, m})
		}
		return nil
	})
	if len(routes) < 6 {
		t.Fatalf("only %d institution routes found", len(routes))
	}
	fill := func(tpl string, iid int64) (string, bool) {
		hasObj := false
		return varRE.ReplaceAllStringFunc(tpl, func(m string) string {
			name := varRE.FindStringSubmatch(m)[1]
			if name == "iid" {
				return fmt.Sprint(iid)
			}
			hasObj = true
			if v, ok := objB[name]; ok {
				return v
			}
			return "999999"
		}), hasObj
	}
	send := func(c *client, method, path string) resp {
		if method == http.MethodGet {
			return c.get(path)
		}
		return c.post(path, url.Values{"role": {"admin"}, "reason": {"x"}, "name": {"Preso"}, "email": {"z@z.example.it"}})
	}
	for _, rt := range routes {
		// B's URLs: A's admin must not learn they exist.
		p, _ := fill(rt.tpl, instB)
		if r := send(adminA, rt.method, p); r.Status != http.StatusNotFound {
			t.Errorf("%s %s as member of A: %d, want 404", rt.method, p, r.Status)
		}
		// A's URLs naming B's objects.
		p, hasObj := fill(rt.tpl, instA)
		if !hasObj {
			continue
		}
		if r := send(adminA, rt.method, p); r.Status != http.StatusNotFound && r.Status != http.StatusForbidden {
			t.Errorf("%s %s (B's object under A): %d, want 404/403", rt.method, p, r.Status)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("institution B changed:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("checked %d institution routes", len(routes))
}
