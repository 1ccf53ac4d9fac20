package portal

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// createService creates a service through the portal and returns its public id.
func (e *testEnv) createService(c *client, inst int64, name string) string {
	e.t.Helper()
	r := c.post(fmt.Sprintf("/i/%d/services", inst), url.Values{"name": {name}, "scope": {"LOCAL"}})
	if r.Status != http.StatusSeeOther || !strings.HasSuffix(r.Location, "/keys") {
		e.t.Fatalf("create service: %d %q %s", r.Status, r.Location, snippet(r.Body))
	}
	parts := strings.Split(r.Location, "/")
	return parts[len(parts)-2]
}

func validCard(name string) url.Values {
	return url.Values{
		"name": {name}, "department_name": {"Ufficio Tributi"}, "scope": {"LOCAL"}, "topic": {"taxes"},
		"description": {"Avvisi e scadenze della **tassa rifiuti**: ricevi l'avviso di pagamento e le scadenze."},
		"privacy_url": {"https://www.comune.example.it/privacy"}, "email": {"tributi@comune.example.it"},
		"max_payment": {"1.500,00"}, "recipients": {"RSSMRA85T10A562S"},
	}
}

var checklistAnswers = map[string]url.Values{
	"legal_basis":     {"state": {"done"}, "f_basis": {"public_task"}, "f_mandate": {"D.Lgs. 82/2005, art. 64-bis"}},
	"data_categories": {"state": {"done"}, "f_categories": {"identity", "payment"}},
	"privacy_notice":  {"state": {"done"}, "evidence": {"https://www.comune.example.it/privacy"}},
	"controller_dpo":  {"state": {"done"}, "f_controller": {"Comune di Prova"}, "f_dpo_contact": {"rpd@comune.example.it"}},
	"retention":       {"state": {"done"}, "f_period": {"fino alla consegna, massimo 30 giorni"}},
	"minimisation":    {"state": {"na"}, "justification": {"i messaggi non contengono dati oltre all'importo"}},
	"dpia":            {"state": {"done"}, "f_outcome": {"not_required"}, "justification": {"trattamento non su larga scala"}},
	"staff":           {"state": {"done"}},
	"dpa_terms":       {"state": {"done"}, "f_accepted": {"yes"}},
}

func (e *testEnv) completeChecklist(c *client, inst int64, sid string) {
	e.t.Helper()
	for id, v := range checklistAnswers {
		r := c.post(fmt.Sprintf("/i/%d/services/%s/checklist/%s", inst, sid, id), v)
		if r.Status != http.StatusSeeOther {
			e.t.Fatalf("checklist %s: %d %s", id, r.Status, snippet(r.Body))
		}
	}
}

func (e *testEnv) versionStates(sid string) string {
	e.t.Helper()
	var s string
	if err := e.DB.R.Get(&s, `SELECT group_concat(version_no || ':' || state, ' ') FROM (SELECT v.version_no, v.state FROM service_versions v
		JOIN services s ON s.id = v.service_id WHERE s.public_id = ? ORDER BY v.version_no)`, sid); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestServiceLifecycle(t *testing.T) {
	e := newTestEnv(t)
	var changed []int64
	var mu sync.Mutex
	e.App.Hooks.ServiceChanged = func(id int64) { mu.Lock(); changed = append(changed, id); mu.Unlock() }
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	if n := e.count(`SELECT count(*) FROM api_keys k JOIN services s ON s.id = k.service_id WHERE s.public_id = ? AND k.mode = 'test' AND k.revoked_at IS NULL`, sid); n != 2 {
		t.Fatalf("%d test keys after creation, want 2", n)
	}
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)

	// A mistake in the card: shown next to the field, nothing stored.
	bad := validCard("TARI")
	bad.Set("privacy_url", "www.comune.example.it/privacy")
	bad.Set("recipients", "RSSMRA85T10A562X")
	r := admin.post(base+"/card", bad)
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad card: %d", r.Status)
	}
	mustContain(t, r, `id="f-privacy_url-error"`, "inizia con http:// o https://", "RSSMRA85T10A562X")
	if strings.Contains(e.versionCard(sid), "privacy") {
		t.Fatal("invalid card was stored")
	}

	// Submitting an incomplete service is refused with the list of what is missing.
	r = admin.post(base+"/submit", nil)
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("incomplete submit: %d", r.Status)
	}
	mustContain(t, r, "non può ancora essere inviato", "manca la descrizione", "Base giuridica del trattamento")

	r = admin.post(base+"/card", validCard("TARI"))
	mustContain(t, admin.follow(r), "Scheda salvata.")
	var recipients string
	_ = e.DB.R.Get(&recipients, `SELECT authorized_recipients FROM services WHERE public_id = ?`, sid)
	if recipients != `["RSSMRA85T10A562S"]` {
		t.Fatalf("recipients %s", recipients)
	}
	e.completeChecklist(admin, inst, sid)
	mustContain(t, admin.get(base), "Checklist privacy completa", "Scheda completa")

	// An operator may submit.
	operator := e.inviteAndJoin(admin, inst, "op@comune.example.it", "operator")
	r = operator.post(base+"/submit", nil)
	mustContain(t, operator.follow(r), "Servizio inviato in revisione")
	if got := e.versionStates(sid); got != "1:submitted" {
		t.Fatalf("states %s", got)
	}
	// Under review, the card cannot change (its fields are ignored; only
	// the technical settings may be saved).
	admin.post(base+"/card", validCard("TARI 2"))
	if n := e.count(`SELECT count(*) FROM service_versions WHERE json_extract(card, '$.name') = 'TARI 2'`); n != 0 {
		t.Fatal("the card changed under review")
	}

	pa := e.platformAdmin("root@sportello.example.it")
	mustContain(t, pa.get("/admin/reviews"), "TARI", "Comune di Prova 1", "Prima approvazione")
	r = pa.decide(sid, "reject", url.Values{"reason": {"corto"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("reject without reason: %d", r.Status)
	}
	mustContain(t, r, "Scrivi il motivo del rifiuto")
	reason := "Manca il numero di telefono dell'ufficio"
	r = pa.decide(sid, "reject", url.Values{"reason": {reason}})
	mustContain(t, pa.follow(r), "è stato respinto")
	page := admin.get(base)
	mustContain(t, page, "Richiesta respinta", reason)
	// The institution hears of it by mail: its admins and whoever submitted.
	var mails []struct {
		To      string `db:"to_addr"`
		Subject string `db:"subject"`
		Body    string `db:"body"`
	}
	if err := e.DB.R.Select(&mails, `SELECT to_addr, subject, body FROM mail_outbox ORDER BY to_addr`); err != nil {
		t.Fatal(err)
	}
	if len(mails) != 2 || mails[0].To != "a@comune.example.it" || mails[1].To != "op@comune.example.it" {
		t.Fatalf("rejection mails %+v, want the admin and the submitting operator", mails)
	}
	for _, m := range mails {
		if !strings.Contains(m.Subject, "TARI") || !strings.Contains(m.Body, reason) || !strings.Contains(m.Body, "http://sportello.test"+base) {
			t.Fatalf("rejection mail lacks the service, the reason or the link: %+v", m)
		}
	}

	// Fix and resubmit, then approve.
	fixed := validCard("TARI")
	fixed.Set("phone", "051 123456")
	admin.post(base+"/card", fixed)
	admin.post(base+"/submit", nil)
	r = pa.decide(sid, "approve", nil)
	mustContain(t, pa.follow(r), "è stato approvato")
	// This time the admin submitted: one approval mail, to the admin.
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE subject LIKE '%approvato%'`); n != 1 {
		t.Fatalf("%d approval mails, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE subject LIKE '%approvato%' AND to_addr = 'a@comune.example.it' AND body LIKE '%chiavi di produzione%'`); n != 1 {
		t.Fatal("the approval mail does not reach the admin or does not say what to do next")
	}
	if got := e.versionStates(sid); got != "1:approved" {
		t.Fatalf("states after approval %s", got)
	}
	var maxPay int64
	_ = e.DB.R.Get(&maxPay, `SELECT max_payment_cents FROM services WHERE public_id = ? AND live_version_id IS NOT NULL`, sid)
	if maxPay != 150000 {
		t.Fatalf("max payment %d", maxPay)
	}
	mustContain(t, e.newClient().get("/services"), "TARI", "tassa rifiuti")

	// Editing the approved service opens version 2; version 1 stays in force.
	edit := validCard("TARI - Tassa rifiuti")
	edit.Set("phone", "051 123456")
	edit.Set("max_payment", "3.000,00")
	admin.post(base+"/card", edit)
	if got := e.versionStates(sid); got != "1:approved 2:draft" {
		t.Fatalf("states after edit %s", got)
	}
	_ = e.DB.R.Get(&maxPay, `SELECT max_payment_cents FROM services WHERE public_id = ?`, sid)
	if maxPay != 150000 {
		t.Fatal("a draft changed the payment cap in force")
	}
	pub := e.newClient().get("/services")
	if strings.Contains(pub.Body, "TARI - Tassa rifiuti") {
		t.Fatal("public page shows the unapproved version")
	}
	admin.post(base+"/submit", nil)
	review := pa.get("/admin/reviews/" + sid)
	mustContain(t, review, "Modifiche rispetto alla versione in vigore", "TARI - Tassa rifiuti", "3.000,00", "modificato")
	pa.decide(sid, "approve", nil)
	if got := e.versionStates(sid); got != "1:superseded 2:approved" {
		t.Fatalf("states after second approval %s", got)
	}
	mustContain(t, e.newClient().get("/services"), "TARI - Tassa rifiuti")
	mustContain(t, admin.get(base), "Approvato", "Inviato in revisione", "Respinto", reason)
	if e.count(`SELECT count(*) FROM audit_events WHERE action IN ('service.approve', 'service.reject', 'service.submit', 'service.checklist')`) < 12 {
		t.Fatal("lifecycle not audited")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changed) == 0 {
		t.Fatal("ServiceChanged hook never called")
	}
}

func (e *testEnv) versionCard(sid string) string {
	var s string
	_ = e.DB.R.Get(&s, `SELECT v.card FROM service_versions v JOIN services s ON s.id = v.service_id WHERE s.public_id = ? ORDER BY v.id DESC LIMIT 1`, sid)
	return s
}

func TestWithdrawAndDuplicateName(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	pa := e.platformAdmin("root@sportello.example.it")
	first := e.createService(admin, inst, "Mensa scolastica")
	admin.post(fmt.Sprintf("/i/%d/services/%s/card", inst, first), validCard("Mensa scolastica"))
	e.completeChecklist(admin, inst, first)
	admin.post(fmt.Sprintf("/i/%d/services/%s/submit", inst, first), nil)
	r := admin.post(fmt.Sprintf("/i/%d/services/%s/withdraw", inst, first), nil)
	mustContain(t, admin.follow(r), "Richiesta ritirata")
	if got := e.versionStates(first); got != "1:draft" {
		t.Fatalf("after withdraw %s", got)
	}
	admin.post(fmt.Sprintf("/i/%d/services/%s/submit", inst, first), nil)
	pa.decide(first, "approve", nil)

	second := e.createService(admin, inst, "MENSA SCOLASTICA")
	admin.post(fmt.Sprintf("/i/%d/services/%s/card", inst, second), validCard("MENSA SCOLASTICA"))
	e.completeChecklist(admin, inst, second)
	r = admin.post(fmt.Sprintf("/i/%d/services/%s/submit", inst, second), nil)
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("duplicate name submitted: %d", r.Status)
	}
	mustContain(t, r, "ha già un servizio in produzione chiamato")
}

func TestSpecialCategoriesForceSecureChannels(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Referti")
	admin.post(fmt.Sprintf("/i/%d/services/%s/checklist/data_categories", inst, sid), url.Values{"state": {"done"}, "f_categories": {"identity", "special"}})
	var secure bool
	_ = e.DB.R.Get(&secure, `SELECT require_secure_channels FROM services WHERE public_id = ?`, sid)
	if !secure || !strings.Contains(e.versionCard(sid), `"require_secure_channels":true`) {
		t.Fatal("special categories did not force secure channels")
	}
	// Saving the card without the box keeps it on.
	admin.post(fmt.Sprintf("/i/%d/services/%s/card", inst, sid), validCard("Referti"))
	if !strings.Contains(e.versionCard(sid), `"require_secure_channels":true`) {
		t.Fatal("card save dropped the forced secure channels")
	}
}

func TestServiceRolesAndConsole(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Servizio")
	operator := e.inviteAndJoin(admin, inst, "op@comune.example.it", "operator")
	if r := operator.post(fmt.Sprintf("/i/%d/services/%s/delete", inst, sid), url.Values{"confirm_name": {"Servizio"}}); r.Status != http.StatusForbidden {
		t.Fatalf("operator deleted a service: %d", r.Status)
	}
	for _, p := range []string{"/admin/reviews", "/admin/services", "/admin/reviews/" + sid} {
		if r := admin.get(p); r.Status != http.StatusForbidden {
			t.Errorf("institution admin on %s: %d", p, r.Status)
		}
	}
	for _, p := range []string{"/admin/reviews/" + sid + "/approve", "/admin/services/" + sid + "/suspend", "/admin/services/" + sid + "/limits"} {
		if r := admin.post(p, url.Values{"requests": {"1"}, "window": {"1"}}); r.Status != http.StatusForbidden {
			t.Errorf("institution admin POST %s: %d", p, r.Status)
		}
	}
	pa := e.platformAdmin("root@sportello.example.it")
	// A draft has no live keys yet: the limit is there, marked as for later.
	mustContain(t, pa.get("/admin/services?q=Serv"), "Servizio", sid, "Vale per le chiavi di produzione")
	r := pa.post("/admin/services/"+sid+"/limits", url.Values{"requests": {"300"}, "window": {"5"}})
	mustContain(t, pa.follow(r), "300 richieste ogni 5 secondi")
	if n := e.count(`SELECT COUNT(*) FROM audit_events WHERE action = 'service.limits' AND detail = '150/5s → 300/5s'`); n != 1 {
		t.Fatal("the audit does not say what the limit was and became")
	}
	r = pa.post("/admin/services/"+sid+"/limits", url.Values{"requests": {"0"}, "window": {"5"}})
	mustContain(t, r, "Limite di Servizio non salvato", "Il limite resta di 300 richieste ogni 5 secondi")
	if e.count(`SELECT rate_limit_requests FROM services WHERE public_id = ?`, sid) != 300 {
		t.Fatal("limit not stored or invalid limit stored")
	}
	pa.post("/admin/services/"+sid+"/suspend", nil)
	if e.count(`SELECT count(*) FROM services WHERE public_id = ? AND suspended_at IS NOT NULL`, sid) != 1 {
		t.Fatal("not suspended")
	}
	mustContain(t, admin.get(fmt.Sprintf("/i/%d/services", inst)), "Sospeso")
	// The keys page is where staff go when their integration fails: it
	// says the keys are refused and that regenerating them does not help.
	keysPage := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)
	mustContain(t, admin.get(keysPage), "Servizio sospeso", "403", "Rigenerare le chiavi non serve")
	// Operators see the keys but are told who manages them.
	mustContain(t, operator.get(keysPage), "Solo gli amministratori dell'ente possono creare")
	pa.post("/admin/services/"+sid+"/reactivate", nil)
	if body := admin.get(keysPage).Body; strings.Contains(body, "Servizio sospeso") {
		t.Fatal("the suspension notice stays after reactivation")
	}
	// Deleting needs the name typed; then it is final and revokes the keys.
	r = admin.post(fmt.Sprintf("/i/%d/services/%s/delete", inst, sid), url.Values{"confirm_name": {"altro"}})
	mustContain(t, admin.follow(r), "non corrisponde")
	admin.post(fmt.Sprintf("/i/%d/services/%s/delete", inst, sid), url.Values{"confirm_name": {"Servizio"}})
	if r := admin.get(fmt.Sprintf("/i/%d/services/%s", inst, sid)); r.Status != http.StatusNotFound {
		t.Fatalf("deleted service page: %d", r.Status)
	}
	if e.count(`SELECT count(*) FROM api_keys WHERE revoked_at IS NULL`) != 0 {
		t.Fatal("keys of a deleted service still active")
	}
}

// Two same-named services submitted while neither is live: the second
// approval is refused.
func TestDuplicateNameRefusedAtApproval(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	pa := e.platformAdmin("root@sportello.example.it")
	var sids []string
	for i, name := range []string{"TARI", "tari"} {
		// Created under different names (a second draft with the same
		// name is refused at creation), then renamed on the card.
		sid := e.createService(admin, inst, fmt.Sprintf("Servizio %d", i))
		admin.post(fmt.Sprintf("/i/%d/services/%s/card", inst, sid), validCard(name))
		e.completeChecklist(admin, inst, sid)
		if r := admin.post(fmt.Sprintf("/i/%d/services/%s/submit", inst, sid), nil); r.Status != http.StatusSeeOther {
			t.Fatalf("submit %s: %d", name, r.Status)
		}
		sids = append(sids, sid)
	}
	pa.decide(sids[0], "approve", nil)
	r := pa.decide(sids[1], "approve", nil)
	mustContain(t, pa.follow(r), "non è possibile approvarne un secondo")
	if e.count(`SELECT count(*) FROM services WHERE live_version_id IS NOT NULL`) != 1 {
		t.Fatal("two live services with the same name")
	}
}

// An approval puts in force what the admin read: if the institution
// withdraws, edits and resubmits between the review page and the click,
// the decision (approve or reject) is refused and the page shows the new
// content.
func TestReviewDecidesOnlyWhatWasShown(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard("TARI"))
	e.completeChecklist(admin, inst, sid)
	admin.post(base+"/submit", nil)

	pa := e.platformAdmin("root@sportello.example.it")
	shown := regexp.MustCompile(`name="reviewed" value="([0-9a-f]+)"`).FindStringSubmatch(pa.get("/admin/reviews/" + sid).Body)
	if shown == nil {
		t.Error("the review page has no digest of what it shows")
		shown = []string{"", ""}
	}

	// Meanwhile: withdraw, change the description, submit again.
	admin.post(base+"/withdraw", nil)
	changed := validCard("TARI")
	changed.Set("description", "PAGA SUBITO su http://phish.example.com: testo che nessuno ha revisionato, abbastanza lungo da passare i controlli della scheda.")
	if r := admin.post(base+"/card", changed); r.Status != http.StatusSeeOther {
		t.Fatalf("edit after withdraw: %d %s", r.Status, snippet(r.Body))
	}
	admin.post(base+"/submit", nil)
	if got := e.versionStates(sid); got != "1:submitted" {
		t.Fatalf("states %s", got)
	}

	for _, action := range []string{"approve", "reject"} {
		r := pa.post("/admin/reviews/"+sid+"/"+action, url.Values{"reviewed": {shown[1]}, "reason": {"Motivo abbastanza lungo"}})
		if r.Status != http.StatusSeeOther || r.Location != "/admin/reviews/"+sid {
			t.Fatalf("%s with a stale page: %d %q", action, r.Status, r.Location)
		}
		page := pa.follow(r)
		mustContain(t, page, "sono cambiate dopo l'apertura", "phish.example.com")
		if got := e.versionStates(sid); got != "1:submitted" {
			t.Fatalf("%s of unread content went through: states %s", action, got)
		}
	}
	if r := pa.post("/admin/reviews/"+sid+"/approve", nil); r.Status != http.StatusSeeOther || e.versionStates(sid) != "1:submitted" {
		t.Fatalf("approve without the digest: %d, states %s", r.Status, e.versionStates(sid))
	}

	// Decided from the page as it is now, it goes through.
	r := pa.decide(sid, "approve", nil)
	mustContain(t, pa.follow(r), "è stato approvato")
	if got := e.versionStates(sid); got != "1:approved" {
		t.Fatalf("states %s", got)
	}
}

// TestAdminLimitsFieldErrors: a refused limit comes back in its service's
// row with the wrong field marked (aria-invalid, described by its error),
// what was typed kept, in Italian or English, and nothing stored; spaces
// around a number are not an error.
func TestAdminLimitsFieldErrors(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Servizio")
	var id int64
	if err := e.DB.R.Get(&id, `SELECT id FROM services WHERE public_id = ?`, sid); err != nil {
		t.Fatal(err)
	}
	pa := e.platformAdmin("root@sportello.example.it")
	limits := "/admin/services/" + sid + "/limits"
	if r := pa.post(limits, url.Values{"requests": {" 200 "}, "window": {"5 "}}); r.Status != http.StatusSeeOther {
		t.Fatalf("a limit with spaces around the numbers: %d", r.Status)
	}
	if n := e.count(`SELECT rate_limit_requests FROM services WHERE id = ?`, id); n != 200 {
		t.Fatalf("limit %d, want 200", n)
	}
	for _, c := range []struct {
		req, win string
		badReq   bool
		badWin   bool
	}{
		{"abc", "5", true, false}, {"-5", "5", true, false}, {"0", "5", true, false}, {"999999999", "5", true, false},
		{"+10", "5", true, false}, {"1e3", "5", true, false}, {"10", "0", false, true}, {"10", "99999", false, true}, {"", "", true, true},
	} {
		r := pa.post(limits, url.Values{"requests": {c.req}, "window": {c.win}})
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%q/%q: %d, want 422", c.req, c.win, r.Status)
		}
		reqMarked := strings.Contains(r.Body, fmt.Sprintf(`aria-invalid="true" aria-describedby="req-%d-error"`, id))
		winMarked := strings.Contains(r.Body, fmt.Sprintf(`aria-invalid="true" aria-describedby="win-%d-error"`, id))
		if reqMarked != c.badReq || winMarked != c.badWin {
			t.Errorf("%q/%q: requests marked %v, window marked %v; want %v, %v", c.req, c.win, reqMarked, winMarked, c.badReq, c.badWin)
		}
		if c.badReq {
			mustContain(t, r, fmt.Sprintf(`id="req-%d-error"`, id), "Scrivi un numero intero di richieste da 1 a 100000", fmt.Sprintf(`value="%s"`, template.HTMLEscapeString(c.req)))
		}
		if c.badWin {
			mustContain(t, r, fmt.Sprintf(`id="win-%d-error"`, id), "Scrivi la finestra in secondi, un numero intero da 1 a 3600")
		}
		mustContain(t, r, "Limite di Servizio non salvato", "Il limite resta di 200 richieste ogni 5 secondi")
		if n := e.count(`SELECT rate_limit_requests FROM services WHERE id = ?`, id); n != 200 {
			t.Fatalf("%q/%q stored %d", c.req, c.win, n)
		}
	}
	pa.post("/lang", url.Values{"lang": {"en"}, "next": {"/admin/services"}})
	r := pa.post(limits, url.Values{"requests": {"-1"}, "window": {"5"}})
	mustContain(t, r, "Enter a whole number of requests from 1 to 100000", "Limit of Servizio not saved")
}

// TestSuspendTwiceChangesNothing: suspending what is suspended (or
// reactivating what is active), by a second click or a second admin,
// keeps the time of the suspension and adds no event for nothing.
func TestSuspendTwiceChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Servizio")
	pa := e.platformAdmin("root@sportello.example.it")
	pa.post("/admin/services/"+sid+"/suspend", nil)
	var first string
	if err := e.DB.R.Get(&first, `SELECT suspended_at FROM services WHERE public_id = ?`, sid); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	mustContain(t, pa.follow(pa.post("/admin/services/"+sid+"/suspend", nil)), "era già sospeso")
	var again string
	_ = e.DB.R.Get(&again, `SELECT suspended_at FROM services WHERE public_id = ?`, sid)
	if again != first {
		t.Errorf("a second suspension moved the time it was suspended: %s → %s", first, again)
	}
	pa.post("/admin/services/"+sid+"/reactivate", nil)
	mustContain(t, pa.follow(pa.post("/admin/services/"+sid+"/reactivate", nil)), "era già attivo")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action IN ('service.suspend', 'service.reactivate')`); n != 2 {
		t.Errorf("%d service suspension events, want 2 (one suspension, one reactivation)", n)
	}

	path := fmt.Sprintf("/admin/institutions/%d/", inst)
	mustContain(t, pa.follow(pa.post(path+"reactivate", nil)), "era già attivo")
	pa.post(path+"suspend", url.Values{"reason": {"verifica"}})
	mustContain(t, pa.follow(pa.post(path+"suspend", nil)), "era già sospeso")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action IN ('institution.suspend', 'institution.reactivate')`); n != 1 {
		t.Errorf("%d institution suspension events, want 1", n)
	}
}

// A suspension's reason reaches the institution: on the service's page and
// in a mail to its admins, cleaned of what could make it read otherwise;
// the reactivation is mailed too. (The console's form had no reason field,
// and the institution learnt of a suspension from its integrators' 403s.)
func TestSuspensionReasonReachesTheInstitution(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Servizio")
	pa := e.platformAdmin("root@sportello.example.it")
	mustContain(t, pa.get("/admin/services"), `name="reason"`, "Motivo della sospensione di Servizio")
	pa.post("/admin/services/"+sid+"/suspend", url.Values{"reason": {"  Invii a cittadini\nnon autorizzati \u202eonemmoc  "}})
	var reason string
	if err := e.DB.R.Get(&reason, `SELECT e.reason FROM service_events e JOIN services s ON s.id = e.service_id
		WHERE s.public_id = ? AND e.kind = 'suspend'`, sid); err != nil {
		t.Fatal(err)
	}
	if want := "Invii a cittadini non autorizzati onemmoc"; reason != want {
		t.Fatalf("stored reason %q, want %q", reason, want)
	}
	mustContain(t, admin.get(fmt.Sprintf("/i/%d/services/%s", inst, sid)), "Invii a cittadini non autorizzati onemmoc")
	var body string
	if err := e.DB.R.Get(&body, `SELECT body FROM mail_outbox WHERE to_addr = 'a@comune.example.it' AND subject LIKE '%è sospeso'`); err != nil {
		t.Fatalf("no suspension mail to the institution's admin: %v", err)
	}
	if !strings.Contains(body, "«Invii a cittadini non autorizzati onemmoc»") {
		t.Fatalf("mail without the reason:\n%s", body)
	}
	pa.post("/admin/services/"+sid+"/reactivate", nil)
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE to_addr = 'a@comune.example.it' AND subject LIKE '%di nuovo attivo'`); n != 1 {
		t.Fatalf("%d reactivation mails, want 1", n)
	}
}

// A suspended institution's admins are told, with the reason: its members
// can no longer open its pages to find out. Operators get no mail.
func TestInstitutionSuspensionIsMailedToItsAdmins(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	e.inviteAndJoin(admin, inst, "op@comune.example.it", "operator")
	pa := e.platformAdmin("root@sportello.example.it")
	pa.post(fmt.Sprintf("/admin/institutions/%d/suspend", inst), url.Values{"reason": {" Verifica\u202e della PEC "}})
	var body string
	if err := e.DB.R.Get(&body, `SELECT body FROM mail_outbox WHERE to_addr = 'a@comune.example.it' AND subject LIKE '%è sospeso'`); err != nil {
		t.Fatalf("no suspension mail to the institution's admin: %v", err)
	}
	if !strings.Contains(body, "«Verifica della PEC»") {
		t.Fatalf("mail without the cleaned reason:\n%s", body)
	}
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE to_addr = 'op@comune.example.it'`); n != 0 {
		t.Fatalf("%d mails to an operator", n)
	}
	pa.post(fmt.Sprintf("/admin/institutions/%d/reactivate", inst), nil)
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE to_addr = 'a@comune.example.it' AND subject LIKE '%di nuovo attivo'`); n != 1 {
		t.Fatalf("%d reactivation mails, want 1", n)
	}
}

// From the console's list a platform admin reaches a service's keys, where
// one key (a leaked one) can be revoked without suspending the service.
func TestPlatformAdminRevokesOneKeyFromTheConsole(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Servizio")
	pa := e.platformAdmin("root@sportello.example.it")
	keys := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)
	mustContain(t, pa.get("/admin/services"), `href="`+keys+`"`)
	if r := pa.get(keys); r.Status != http.StatusOK {
		t.Fatalf("keys page for a platform admin: %d", r.Status)
	}
	before := e.count(`SELECT count(*) FROM api_keys k JOIN services s ON s.id = k.service_id WHERE s.public_id = ? AND k.revoked_at IS NULL`, sid)
	if r := pa.post(keys+"/revoke", url.Values{"mode": {"test"}, "slot": {"secondary"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.Status)
	}
	if after := e.count(`SELECT count(*) FROM api_keys k JOIN services s ON s.id = k.service_id WHERE s.public_id = ? AND k.revoked_at IS NULL`, sid); after != before-1 {
		t.Fatalf("active keys %d → %d, want one fewer", before, after)
	}
	if n := e.count(`SELECT count(*) FROM services WHERE public_id = ? AND suspended_at IS NULL`, sid); n != 1 {
		t.Fatal("the service was suspended")
	}
}
