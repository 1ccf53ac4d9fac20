package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// Platform admins add and remove colleagues in the console: a new address
// gets an account and a one-use link to choose its password; an existing
// account (an institution's member) is promoted as it is; rights are taken
// away at once, never one's own. (Never the last admin's either: two
// admins removing each other at once; the check is inside the write.)
func TestPlatformAdminsAreManagedInTheConsole(t *testing.T) {
	e := newTestEnv(t)
	member, _ := e.registerInst(1, "anna@comune.example.it")
	root := e.platformAdmin("root@sportello.example.it")
	mustContain(t, root.get("/admin/admins"), "Amministratori della piattaforma", "root@sportello.example.it")

	// Bad input: the error is next to the field, nothing is stored.
	bad := root.post("/admin/admins", url.Values{"email": {"non-un-indirizzo"}})
	if bad.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad email: %d", bad.Status)
	}
	mustContain(t, bad, `id="f-email-error"`)
	if n := e.count(`SELECT count(*) FROM users WHERE email = 'non-un-indirizzo'`); n != 0 {
		t.Fatal("a bad address was stored")
	}

	// A new address: an account and a link to choose the password.
	r := root.post("/admin/admins", url.Values{"email": {"Bruno@Sportello.example.it"}, "name": {"Bruno Neri"}})
	link := regexp.MustCompile(`http://sportello.test(/password/reset/[A-Za-z0-9_-]+)`).FindStringSubmatch(r.Body)
	if r.Status != http.StatusOK || link == nil {
		t.Fatalf("add a new admin: %d, link %v", r.Status, link)
	}
	bruno := e.newClient()
	if res := bruno.post(link[1], url.Values{"password": {testPassword}, "password_confirm": {testPassword}}); res.Status != http.StatusSeeOther {
		t.Fatalf("choosing the password: %d %s", res.Status, snippet(res.Body))
	}
	bruno = e.login("bruno@sportello.example.it", testPassword)
	if res := bruno.get("/admin"); res.Status != http.StatusOK {
		t.Fatalf("the new admin's console: %d", res.Status)
	}

	// An existing account is promoted; asking twice says so.
	if res := root.post("/admin/admins", url.Values{"email": {"anna@comune.example.it"}}); res.Status != http.StatusSeeOther {
		t.Fatalf("promote a member: %d", res.Status)
	}
	if res := member.get("/admin"); res.Status != http.StatusOK {
		t.Fatalf("the promoted member's console: %d", res.Status)
	}
	mustContain(t, root.post("/admin/admins", url.Values{"email": {"anna@comune.example.it"}}), "già amministratore")

	// Rights are taken away at once; never one's own.
	var annaID, rootID int64
	_ = e.DB.R.Get(&annaID, `SELECT id FROM users WHERE email = 'anna@comune.example.it'`)
	_ = e.DB.R.Get(&rootID, `SELECT id FROM users WHERE email = 'root@sportello.example.it'`)
	root.post(fmt.Sprintf("/admin/admins/%d/revoke", annaID), nil)
	if res := member.get("/admin"); res.Status != http.StatusForbidden {
		t.Fatalf("console after the rights were removed: %d", res.Status)
	}
	mustContain(t, root.follow(root.post(fmt.Sprintf("/admin/admins/%d/revoke", rootID), nil)), "a te stesso")
	if n := e.count(`SELECT is_platform_admin FROM users WHERE id = ?`, rootID); n != 1 {
		t.Fatal("an admin removed their own rights")
	}
	var brunoID int64
	_ = e.DB.R.Get(&brunoID, `SELECT id FROM users WHERE email = 'bruno@sportello.example.it'`)
	root.post(fmt.Sprintf("/admin/admins/%d/revoke", brunoID), nil)
	if n := e.count(`SELECT count(*) FROM users WHERE is_platform_admin = 1`); n != 1 {
		t.Fatalf("%d admins, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action IN ('admin.grant', 'admin.revoke')`); n != 4 {
		t.Fatalf("%d grant/revoke events, want 4", n)
	}
}
