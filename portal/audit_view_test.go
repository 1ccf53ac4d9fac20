package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"sportello/templates/i18n"
)

// Every action the filter offers has a name in both languages.
func TestAuditActionsNamed(t *testing.T) {
	c := i18n.MustLoad()
	for _, code := range auditActions {
		for _, lang := range []string{"it", "en"} {
			if got := c.T(lang, "audit.action."+code); got == "audit.action."+code {
				t.Errorf("%s: no %s name for %s", lang, lang, code)
			}
		}
	}
}

// The audit log names actions and details in the reader's language (the
// code stays as the title), and the action filter is a list of names;
// a code chosen there matches exactly.
func TestAuditInWords(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	admin.post(fmt.Sprintf("/i/%d/services/%s/checklist/dpia", inst, sid), url.Values{"state": {"na"}, "justification": {"nessun trattamento su larga scala"}})
	e.newClient().post("/login", url.Values{"email": {"a@comune.example.it"}, "password": {"sbagliata davvero"}})
	e.login("a@comune.example.it", testPassword)

	r := admin.get(fmt.Sprintf("/i/%d/audit", inst))
	mustContain(t, r, `<span title="institution.register">Ente registrato</span>`,
		"Checklist privacy aggiornata", "versione 1: «Valutazione d'impatto (DPIA)» → Non applicabile",
		`<select id="f-action" name="action">`, `<option value="key.create_test">Chiavi di prova create</option>`)
	if strings.Contains(r.Body, "version 1: dpia") {
		t.Error("the Italian page shows the English detail")
	}
	r = e.platformAdmin("root@sportello.example.it").get("/admin/audit?action=login")
	mustContain(t, r, `<option value="login" selected>Accesso</option>`, `title="login"`)
	if strings.Contains(r.Body, `title="login.failed"`) {
		t.Error("filtering by 'Accesso' also lists failed sign-ins")
	}
}

// The console's institution filter survives "Filtra" and the older link,
// and the page says it is on.
func TestAdminAuditKeepsInstitutionFilter(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "a@comune.example.it")
	_, inst := e.registerInst(2, "b@comune.example.it")
	pa := e.platformAdmin("root@sportello.example.it")
	for i := 0; i < auditPageSize+5; i++ {
		if _, err := e.DB.W.Exec(`INSERT INTO audit_events (at, actor, institution_id, action) VALUES (?, 'b@comune.example.it', ?, 'login')`, time.Now().UTC(), inst); err != nil {
			t.Fatal(err)
		}
	}
	r := pa.get(fmt.Sprintf("/admin/audit?institution=%d", inst))
	if r.Status != http.StatusOK {
		t.Fatalf("%d", r.Status)
	}
	mustContain(t, r, fmt.Sprintf(`<input type="hidden" name="institution" value="%d">`, inst),
		fmt.Sprintf("Stai vedendo solo gli eventi dell'ente Comune di Prova 2 (n. %d).", inst), `<a href="/admin/audit">Mostra tutti gli enti</a>`)
	m := regexp.MustCompile(`<a href="([^"]*before=[^"]*)">Eventi precedenti</a>`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatal("no link to older events")
	}
	if !strings.Contains(m[1], fmt.Sprintf("institution=%d", inst)) {
		t.Errorf("the older link %q drops the institution filter", m[1])
	}
}

// TestAdminAuditNamesInstitutions: the console's audit column names the
// institution (it showed only "#2"), still linking to its filter.
func TestAdminAuditNamesInstitutions(t *testing.T) {
	e := newTestEnv(t)
	_, inst := e.registerInst(2, "b@comune.example.it")
	pa := e.platformAdmin("root@sportello.example.it")
	r := pa.get("/admin/audit")
	mustContain(t, r, fmt.Sprintf(`<a href="/admin/audit?institution=%d">Comune di Prova 2</a>`, inst))
}

// The filter by who acted matches how an address begins, case aside, and
// each row's actor is a link to that filter (the institution kept).
func TestAuditActorFilterMatchesHowAnAddressBegins(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "a@comune.example.it")
	_, inst := e.registerInst(2, "b@comune.example.it")
	pa := e.platformAdmin("root@sportello.example.it")
	r := pa.get(fmt.Sprintf("/admin/audit?institution=%d", inst))
	mustContain(t, r, fmt.Sprintf(`<a href="/admin/audit?actor=b%%40comune.example.it&institution=%d">b@comune.example.it<span class="visually-hidden"> · mostra solo i suoi eventi</span></a>`, inst))
	r = pa.get("/admin/audit?actor=B@Comune.example.it")
	mustContain(t, r, `title="institution.register"`, `value="B@Comune.example.it"`, "Chi (indirizzo, o il suo inizio)")
	if strings.Contains(r.Body, "a@comune.example.it") {
		t.Error("another actor's events listed")
	}
	if r = pa.get("/admin/audit?actor=comune"); strings.Contains(r.Body, `title="institution.register"`) {
		t.Error("the middle of an address matched")
	}
	r = pa.get("/admin/audit?actor=B")
	mustContain(t, r, `title="institution.register"`)
	if strings.Contains(r.Body, "a@comune.example.it") {
		t.Error("an address beginning otherwise matched")
	}
}
