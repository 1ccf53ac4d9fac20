package citizen

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/delivery/deliverytest"
)

// manyServices adds n approved, visible services of the test institution
// in one transaction, named "Servizio 0001"... (AddService takes one
// transaction each: 2,000 of them are seconds under -race).
func (e *env) manyServices(n int) {
	e.t.Helper()
	now := time.Now().UTC()
	err := e.db.WriteTx(e.ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{
			`INSERT INTO services (public_id, institution_id, name, is_visible, created_at)
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				SELECT printf('svcbulk%06d', i), ?, printf('Servizio %04d', i), 1, ? FROM n`,
			`INSERT INTO service_versions (service_id, version_no, state, card, created_at, updated_at)
				SELECT id, 1, 'approved', json_object('name', name, 'description', 'Avvisi e scadenze del servizio ' || name,
					'scope', 'LOCAL', 'web_url', 'https://example.it', 'privacy_url', 'https://example.it/privacy'), created_at, created_at
				FROM services WHERE public_id LIKE 'svcbulk%' AND live_version_id IS NULL`,
			`UPDATE services SET live_version_id = (SELECT v.id FROM service_versions v WHERE v.service_id = services.id)
				WHERE public_id LIKE 'svcbulk%' AND live_version_id IS NULL`,
		} {
			args := []any{}
			if strings.Contains(q, "RECURSIVE") {
				args = []any{n, e.inst, now}
			}
			if _, err := tx.ExecContext(e.ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// citizen signs fc in to the web app with mode chosen.
func (e *env) citizen(fc, mode string) *browser {
	e.t.Helper()
	b := e.browser()
	b.post("/citizen/login", url.Values{"fiscal_code": {fc}})
	if code, _ := b.post("/citizen/app/profile", url.Values{"mode": {mode}, "is_inbox_enabled": {"on"}, "email": {""}}); code != http.StatusSeeOther {
		e.t.Fatalf("profile: %d", code)
	}
	return b
}

// prefVersion is the citizen's preferences_version.
func (e *env) prefVersion(fc string) int {
	e.t.Helper()
	var v int
	if err := e.db.R.Get(&v, `SELECT preferences_version FROM profiles WHERE fiscal_code = ?`, fc); err != nil {
		e.t.Fatal(err)
	}
	return v
}

var switchForm = regexp.MustCompile(`action="/citizen/app/services/([^"]+)"`)

// listed returns the public ids of the services the page has a switch for.
func listed(body string) []string {
	var out []string
	for _, m := range switchForm.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func (b *browser) app(query string) string {
	b.t.Helper()
	code, body := b.get("/citizen/app" + query)
	if code != http.StatusOK {
		b.t.Fatalf("app%s: %d", query, code)
	}
	return body
}

// The list shows a page of services at a time, with a previous and a next
// link that keep the search, and says which page of how many.
func TestAppServicesPaged(t *testing.T) {
	e := newEnv(t)
	e.manyServices(60)
	b := e.citizen(person(1), "AUTO")
	body := b.app("")
	if n := len(listed(body)); n != appServicesPageSize {
		t.Fatalf("page 1 lists %d services, want %d", n, appServicesPageSize)
	}
	if !strings.Contains(body, "Servizio 0001") || strings.Contains(body, "Servizio 0026") || !strings.Contains(body, "60 servizi") {
		t.Fatal("page 1: wrong services or no count")
	}
	if !strings.Contains(body, `href="/citizen/app?page=2#services" rel="next"`) || strings.Contains(body, `rel="prev"`) || !strings.Contains(body, "Pagina 1 di 3") {
		t.Fatalf("page 1 links:\n%s", body)
	}
	body = b.app("?page=2&q=servizio")
	if !strings.Contains(body, "Servizio 0026") || !strings.Contains(body, "Servizio 0050") || strings.Contains(body, "Servizio 0051") {
		t.Fatal("page 2: wrong services")
	}
	if !strings.Contains(body, `href="/citizen/app?q=servizio#services" rel="prev"`) || !strings.Contains(body, `href="/citizen/app?page=3&amp;q=servizio#services" rel="next"`) {
		t.Fatalf("page 2 links do not keep the search:\n%s", body)
	}
	body = b.app("?page=3")
	if n := len(listed(body)); n != 10 || strings.Contains(body, `rel="next"`) || !strings.Contains(body, "Servizio 0060") {
		t.Fatalf("last page: %d services, or a next link", n)
	}
	// Past the end is the last page; anything but a positive number is page 1.
	if body = b.app("?page=999999999999"); !strings.Contains(body, "Pagina 3 di 3") || !strings.Contains(body, "Servizio 0060") {
		t.Fatal("a page past the end is not the last one")
	}
	for _, p := range []string{"0", "-2", "abc", "1e3", "%00", "2.5"} {
		if body = b.app("?page=" + p); !strings.Contains(body, "Pagina 1 di 3") || !strings.Contains(body, "Servizio 0001") {
			t.Errorf("page=%s is not page 1", p)
		}
	}
}

// The search finds services by their name or their institution's, in any
// case, with or without accents, every word anywhere; none found says so.
func TestAppServicesSearch(t *testing.T) {
	e := newEnv(t)
	tributi := e.service("Tributi", deliverytest.ServiceOpts{})
	ferrara, err := deliverytest.Institution(e.ctx, e.db, "Città di Ferrara")
	if err != nil {
		t.Fatal(err)
	}
	mensa, err := deliverytest.AddService(e.ctx, e.db, ferrara, "Mensa scolastica", deliverytest.ServiceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	carta := e.service("Carta d’identità", deliverytest.ServiceOpts{})
	b := e.citizen(person(2), "AUTO")
	for q, want := range map[string][]string{
		"TRIBUTI":         {tributi.PublicID},
		"tri":             {tributi.PublicID},
		"ferrara":         {mensa.PublicID}, // the institution's name
		"citta":           {mensa.PublicID},
		"CITTÀ mensa":     {mensa.PublicID},
		"  mensa   città": {mensa.PublicID},
		"mensa prova":     nil,                                // every word must match
		"comune di prova": {carta.PublicID, tributi.PublicID}, // in the list's order
	} {
		body := b.app("?q=" + url.QueryEscape(q))
		got := listed(body)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("q=%q lists %v, want %v", q, got, want)
		}
		if len(want) == 0 && !strings.Contains(body, "Nessun servizio trovato per «"+strings.Join(strings.Fields(q), " ")+"»") {
			t.Errorf("q=%q: no empty-state message", q)
		}
	}
	if body := b.app("?q=identita"); len(listed(body)) != 1 || !strings.Contains(body, "1 servizio trovato per «identita»") {
		t.Error("the typographic apostrophe and the accent stop the search, or the count is wrong")
	}
	// A search text is shown escaped, control characters and invalid UTF-8
	// dropped, cut at 100 characters: always a page, never a 500.
	body := b.app("?q=" + url.QueryEscape(`<script>x</script>`))
	if strings.Contains(body, "<script>x") || !strings.Contains(body, "&lt;script&gt;x") {
		t.Error("the search text is not escaped")
	}
	long := strings.Repeat("à", 300)
	body = b.app("?q=" + url.QueryEscape(long) + "&page=2")
	if !strings.Contains(body, `value="`+strings.Repeat("à", maxServicesSearch)+`"`) || strings.Contains(body, strings.Repeat("à", maxServicesSearch+1)) {
		t.Error("a long search is not cut to 100 characters")
	}
	if body = b.app("?q=trib%00uti%ff%0A"); !strings.Contains(body, `value="trib uti"`) {
		t.Errorf("control characters or invalid UTF-8 kept:\n%s", body)
	}
}

// "Only the ones I changed" lists the services whose preference differs
// from the mode's default: turned off in AUTO, turned on in MANUAL,
// blocked in LEGACY. A choice equal to the default is no change.
func TestAppServicesChangedFilter(t *testing.T) {
	e := newEnv(t)
	off := e.service("Anagrafe", deliverytest.ServiceOpts{})
	back := e.service("Biblioteca", deliverytest.ServiceOpts{})
	e.service("Cultura", deliverytest.ServiceOpts{})
	fc := person(3)
	b := e.citizen(fc, "AUTO")
	b.post("/citizen/app/services/"+off.PublicID, url.Values{"enable": {"0"}})
	b.post("/citizen/app/services/"+back.PublicID, url.Values{"enable": {"0"}})
	b.post("/citizen/app/services/"+back.PublicID, url.Values{"enable": {"1"}}) // back to the default
	body := b.app("?filter=changed")
	if got := listed(body); len(got) != 1 || got[0] != off.PublicID {
		t.Fatalf("AUTO, changed: %v, want only %s", got, off.PublicID)
	}
	if !strings.Contains(body, "1 servizio modificato da te") || !strings.Contains(body, "Modificato da te") ||
		!strings.Contains(body, `href="/citizen/app?filter=changed#services" aria-current="page"`) {
		t.Fatalf("AUTO, changed: no count, badge or current tab:\n%s", body)
	}
	if body = b.app("?filter=changed&q=cultura"); len(listed(body)) != 0 || !strings.Contains(body, "Nessun servizio trovato per «cultura»") {
		t.Fatal("a search in the changed ones finds an unchanged service")
	}
	if body = b.app(""); len(listed(body)) != 3 || strings.Count(body, `<span class="badge badge-info">Modificato da te`) != 1 {
		t.Fatal("all services: not all listed, or the change not marked")
	}
	// Channels changed through the API, the inbox still on, is a change.
	if code := e.call(fc, "PUT", "/citizen/v1/services/"+back.PublicID+"/preferences",
		map[string]any{"is_inbox_enabled": true, "is_email_enabled": false, "is_webhook_enabled": true, "settings_version": e.prefVersion(fc)}, nil); code != http.StatusOK {
		t.Fatalf("PUT preference: %d", code)
	}
	if got := listed(b.app("?filter=changed")); len(got) != 2 {
		t.Fatalf("e-mail turned off: %v changed, want 2", got)
	}

	manual := e.citizen(person(4), "MANUAL")
	if body := manual.app("?filter=changed"); len(listed(body)) != 0 || !strings.Contains(body, "Non hai modificato nessun servizio") {
		t.Fatal("MANUAL, nothing changed: no empty-state message")
	}
	manual.post("/citizen/app/services/"+back.PublicID, url.Values{"enable": {"1"}})
	if got := listed(manual.app("?filter=changed")); len(got) != 1 || got[0] != back.PublicID {
		t.Fatalf("MANUAL, changed: %v, want %s", got, back.PublicID)
	}

	legacy := deliverytest.DefaultProfile(person(5))
	legacy.Blocked = map[string][]string{off.PublicID: {"EMAIL"}}
	if err := deliverytest.PutProfile(e.ctx, e.db, legacy); err != nil {
		t.Fatal(err)
	}
	lb := e.browser()
	lb.post("/citizen/login", url.Values{"fiscal_code": {legacy.FiscalCode}})
	if body := lb.app("?filter=changed"); !strings.Contains(body, "1 servizio modificato da te") || !strings.Contains(body, "Anagrafe") || strings.Contains(body, "Biblioteca") {
		t.Fatalf("LEGACY, a block is not a change:\n%s", body)
	}
}

// A switch brings the citizen back to the page, search and filter they
// were on (and says which service changed), never anywhere else.
func TestAppToggleReturnsToTheSamePage(t *testing.T) {
	e := newEnv(t)
	e.manyServices(60)
	b := e.citizen(person(6), "AUTO")
	body := b.app("?q=servizio&page=2")
	ids := listed(body)
	if len(ids) == 0 || !strings.Contains(body, `<input type="hidden" name="q" value="servizio"><input type="hidden" name="page" value="2">`) {
		t.Fatalf("the switches do not carry the search and page:\n%s", body)
	}
	code, loc := b.post("/citizen/app/services/"+ids[0], url.Values{"enable": {"0"}, "q": {"servizio"}, "page": {"2"}})
	if want := "/citizen/app?page=2&q=servizio&saved=" + ids[0] + "#services"; code != http.StatusSeeOther || !strings.HasPrefix(loc, want) {
		t.Fatalf("after the switch: %d %q, want %q", code, loc, want)
	}
	body = b.app(strings.TrimSuffix(strings.TrimPrefix(loc, "/citizen/app"), "#services"))
	if !strings.Contains(body, "Pagina 2 di 3") || !strings.Contains(body, "Fatto: «Servizio 0026» ora non può scriverti.") || strings.Contains(body, "Preferenze salvate.") {
		t.Fatalf("back on the page: not page 2, or no notice beside the list:\n%s", body)
	}
	// From the changed-only filter, the filter is kept too.
	_, loc = b.post("/citizen/app/services/"+ids[1], url.Values{"enable": {"0"}, "filter": {"changed"}})
	if !strings.HasPrefix(loc, "/citizen/app?filter=changed&saved=") {
		t.Fatalf("filter not kept: %q", loc)
	}
	// A service that is not there (gone, or never was) gets the app's
	// page saying so, not the API's JSON.
	if code, body := b.post("/citizen/app/services/svc_gone", url.Values{"enable": {"1"}}); code != http.StatusNotFound || !strings.Contains(body, "<html") {
		t.Errorf("unknown service: %d %.200s", code, body)
	}
	// Whatever the form says, the answer is a page of /citizen/app.
	for _, v := range []url.Values{
		{"q": {"//evil.example/"}, "page": {"https://evil.example"}},
		{"page": {"/../../admin"}, "next": {"https://evil.example"}},
		{"q": {"a\r\nLocation: https://evil.example"}, "page": {"-1"}},
	} {
		v.Set("enable", "1")
		code, loc := b.post("/citizen/app/services/"+ids[2], v)
		u, err := url.Parse(loc)
		if code != http.StatusSeeOther || err != nil || u.Host != "" || u.Path != "/citizen/app" || u.Query().Has("page") || strings.ContainsAny(loc, "\r\n") {
			t.Errorf("form %v: %d %q", v, code, loc)
		}
	}
}

// With 2,000 services the page lists 25 of them: it was 990 KB in 60 ms,
// every service with its switch.
func TestAppPageStaysSmallWith2000Services(t *testing.T) {
	e := newEnv(t)
	e.manyServices(2000)
	b := e.citizen(person(7), "AUTO")
	for _, q := range []string{"", "?q=servizio&page=80", "?filter=changed"} {
		body := b.app(q)
		if n := len(listed(body)); n > appServicesPageSize {
			t.Errorf("%q: %d switches", q, n)
		}
		if len(body) > 40_000 {
			t.Errorf("%q: the page is %d bytes, want at most 40 KB", q, len(body))
		}
	}
	if body := b.app(""); !strings.Contains(body, "2.000 servizi") || !strings.Contains(body, "Pagina 1 di 80") {
		t.Error("no count of all services, or of the pages")
	}
}

func TestGroupDigits(t *testing.T) {
	for _, c := range []struct {
		lang string
		n    int
		want string
	}{{"it", 0, "0"}, {"it", 999, "999"}, {"it", 2000, "2.000"}, {"en", 2000, "2,000"}, {"it", 1234567, "1.234.567"}, {"en", -12345, "-12,345"}} {
		if got := groupDigits(c.lang, c.n); got != c.want {
			t.Errorf("groupDigits(%s, %d) = %q, want %q", c.lang, c.n, got, c.want)
		}
	}
}

// The language switch comes back to the same search and page (not the
// one-time notice), and the whole page, title included, is in the chosen
// language, whatever the browser asks for.
func TestAppLanguageSwitchKeepsTheSearch(t *testing.T) {
	e := newEnv(t)
	e.manyServices(60)
	b := e.citizen(person(8), "AUTO")
	body := b.app("?q=servizio&page=2&saved=1")
	if !strings.Contains(body, `name="next" value="/citizen/app?page=2&amp;q=servizio"`) {
		t.Fatalf("the language switch does not keep the search:\n%s", body)
	}
	_, loc := b.post("/citizen/lang", url.Values{"lang": {"en"}, "next": {"/citizen/app?page=2&q=servizio"}})
	if loc != "/citizen/app?page=2&q=servizio" {
		t.Fatalf("switch went to %q", loc)
	}
	body = b.app("?page=2&q=servizio")
	if !strings.Contains(body, "<title>Your preferences") || !strings.Contains(body, "Page 2 of 3") || !strings.Contains(body, "60 services found for “servizio”") {
		t.Fatalf("not in English, or not the same page:\n%s", body)
	}
}
