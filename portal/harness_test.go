package portal

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sportello/db"
	"sportello/db/dbtest"
	"sportello/messaging/fiscalcode"
	"sportello/policies"
	"sportello/templates/i18n"
)

// testEnv is a real portal on a real SQLite file, served over loopback.
type testEnv struct {
	t     *testing.T
	App   *App
	DB    *db.DB
	Srv   *httptest.Server
	clock *testClock
}

// testClock lets tests move time (invitation expiry, session timeouts).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cheapCost keeps argon2id fast in tests; production uses DefaultPasswordCost.
var cheapCost = PasswordCost{MemoryKiB: 64, Time: 1}

func newTestEnv(t *testing.T, tweak ...func(*Deps)) *testEnv {
	t.Helper()
	d := dbtest.Open(t)
	enf, err := policies.New()
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now().UTC()}
	key := []byte(strings.Repeat("k", 32))
	deps := Deps{
		DB: d, Enforcer: enf, Catalog: i18n.MustLoad(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BaseURL: "http://sportello.test", SessionHashKey: key, SessionBlockKey: key,
		Now: clock.Now, PasswordCost: cheapCost,
	}
	for _, f := range tweak {
		f(&deps)
	}
	app, err := New(context.Background(), deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	return &testEnv{t: t, App: app, DB: d, Srv: srv, clock: clock}
}

// client is one browser: its own cookie jar, redirects not followed so
// tests see each step.
type client struct {
	env *testEnv
	hc  *http.Client
}

func (e *testEnv) newClient() *client {
	jar, _ := cookiejar.New(nil)
	return &client{env: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	Status   int
	Location string
	Body     string
	Header   http.Header
}

func (c *client) do(req *http.Request) resp {
	c.env.t.Helper()
	req.Header.Set("Accept-Language", "it")
	res, err := c.hc.Do(req)
	if err != nil {
		c.env.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Location: res.Header.Get("Location"), Body: string(b), Header: res.Header}
}

func (c *client) get(path string) resp {
	c.env.t.Helper()
	req, _ := http.NewRequest("GET", c.env.Srv.URL+path, nil)
	return c.do(req)
}

// post submits a form the way a browser on the same site does.
func (c *client) post(path string, form url.Values) resp {
	c.env.t.Helper()
	req, _ := http.NewRequest("POST", c.env.Srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.do(req)
}

// decide approves or rejects a submitted service from its review page, as
// an admin does: the form carries the digest of the content the page
// showed.
func (c *client) decide(sid, action string, form url.Values) resp {
	c.env.t.Helper()
	page := c.get("/admin/reviews/" + sid)
	m := regexp.MustCompile(`name="reviewed" value="([0-9a-f]*)"`).FindStringSubmatch(page.Body)
	if form == nil {
		form = url.Values{}
	}
	if m != nil {
		form.Set("reviewed", m[1])
	}
	return c.post("/admin/reviews/"+sid+"/"+action, form)
}

// follow GETs the page a POST redirected to (flash messages show there).
func (c *client) follow(r resp) resp {
	c.env.t.Helper()
	if r.Status != http.StatusSeeOther {
		c.env.t.Fatalf("want 303, got %d: %s", r.Status, snippet(r.Body))
	}
	return c.get(r.Location)
}

func snippet(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	s = regexp.MustCompile(`\s+`).ReplaceAllString(s, " ")
	if len(s) > 1500 {
		s = s[:1500]
	}
	return s
}

// orgCode returns a valid 11-digit organisation fiscal code built from n.
func orgCode(n int) string {
	base := fmt.Sprintf("%010d", 8000000000+n)
	for d := 0; d < 10; d++ {
		if c := base + fmt.Sprint(d); fiscalcode.ValidOrganization(c) {
			return c
		}
	}
	panic("no check digit")
}

const testPassword = "una frase lunga e sicura 42"

// registerInst registers an institution with a new admin and returns the
// signed-in client and the institution id.
func (e *testEnv) registerInst(n int, email string) (*client, int64) {
	e.t.Helper()
	c := e.newClient()
	r := c.post("/register", url.Values{
		"inst_name": {fmt.Sprintf("Comune di Prova %d", n)}, "inst_fiscal_code": {orgCode(n)}, "inst_pec": {fmt.Sprintf("protocollo%d@pec.example.it", n)},
		"name": {"Maria Rossi " + fmt.Sprint(n)}, "email": {email}, "password": {testPassword}, "password_confirm": {testPassword},
	})
	if r.Status != http.StatusSeeOther {
		e.t.Fatalf("register: %d %s", r.Status, snippet(r.Body))
	}
	var id int64
	if _, err := fmt.Sscanf(r.Location, "/i/%d/", &id); err != nil {
		e.t.Fatalf("register redirect %q", r.Location)
	}
	return c, id
}

// login signs a new client in.
func (e *testEnv) login(email, password string) *client {
	e.t.Helper()
	c := e.newClient()
	r := c.post("/login", url.Values{"email": {email}, "password": {password}})
	if r.Status != http.StatusSeeOther {
		e.t.Fatalf("login %s: %d %s", email, r.Status, snippet(r.Body))
	}
	return c
}

// platformAdmin creates a platform admin and returns a signed-in client.
func (e *testEnv) platformAdmin(email string) *client {
	e.t.Helper()
	hash := passwordHasher{cost: cheapCost}.Hash(testPassword)
	now := time.Now().UTC()
	res, err := e.DB.W.Exec(`INSERT INTO users (email, name, password_hash, is_platform_admin, created_at, password_changed_at) VALUES (?, 'Admin', ?, 1, ?, ?)`, email, hash, now, now)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	if err := e.App.Enforcer.SetPlatformAdmin(id, true); err != nil {
		e.t.Fatal(err)
	}
	return e.login(email, testPassword)
}

// inviteAndJoin invites email with role into inst (by the admin client) and
// accepts as a new account; returns the new member's client.
func (e *testEnv) inviteAndJoin(admin *client, inst int64, email, role string) *client {
	e.t.Helper()
	r := admin.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {email}, "role": {role}})
	link := regexp.MustCompile(`http://sportello.test(/invite/[A-Za-z0-9_-]+)`).FindStringSubmatch(r.Body)
	if r.Status != http.StatusOK || link == nil {
		e.t.Fatalf("invite: %d %s", r.Status, snippet(r.Body))
	}
	c := e.newClient()
	r = c.post(link[1], url.Values{"name": {"Luca Bianchi"}, "password": {testPassword}, "password_confirm": {testPassword}})
	if r.Status != http.StatusSeeOther {
		e.t.Fatalf("accept: %d %s", r.Status, snippet(r.Body))
	}
	return c
}

func (e *testEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.DB.R.Get(&n, q, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func mustContain(t *testing.T, r resp, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(html.UnescapeString(r.Body), p) {
			t.Errorf("page lacks %q:\n%s", p, snippet(r.Body))
		}
	}
}
