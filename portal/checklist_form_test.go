package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// allChecklist is the whole checklist page's form: every item's fields
// under its id ("legal_basis.state"), as the page sends them.
func allChecklist(answers map[string]url.Values) url.Values {
	form := url.Values{}
	for _, id := range []string{"legal_basis", "data_categories", "privacy_notice", "controller_dpo", "retention", "minimisation", "dpia", "staff", "dpa_terms"} {
		form.Set(id+".state", "todo")
		for k, vs := range answers[id] {
			form[id+"."+k] = vs
		}
	}
	return form
}

// The checklist is one form: a mistake in one item keeps what was typed in
// all the others, stores nothing, and shows the error next to its control
// (linked from the summary, aria-invalid, described by the error).
func TestChecklistOneFormKeepsEverything(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	if r := admin.post(base+"/card", validCard("TARI")); r.Status != http.StatusSeeOther {
		t.Fatalf("card: %d %s", r.Status, snippet(r.Body))
	}
	answers := map[string]url.Values{}
	for k, v := range checklistAnswers {
		answers[k] = v
	}
	// The retention period is missing: the only mistake.
	answers["retention"] = url.Values{"state": {"done"}}
	r := admin.post(base+"/checklist", allChecklist(answers))
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("want 422, got %d %s", r.Status, snippet(r.Body))
	}
	mustContain(t, r,
		`>D.Lgs. 82/2005, art. 64-bis</textarea>`, // other items keep what was typed
		`value="rpd@comune.example.it"`,
		`href="#f-retention-f_period"`,
		`id="f-retention-f_period" name="retention.f_period" value="" aria-invalid="true" aria-describedby="f-retention-f_period-error"`,
		`<p class="field-error" id="f-retention-f_period-error"><span class="visually-hidden">Errore: </span>`,
		"Conservazione: Compila questo campo")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'service.checklist'`); n != 0 {
		t.Fatalf("%d checklist answers stored from an invalid form", n)
	}

	answers["retention"] = checklistAnswers["retention"]
	r = admin.post(base+"/checklist", allChecklist(answers))
	if r.Status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.Status, snippet(r.Body))
	}
	mustContain(t, admin.follow(r), "9 punti salvati.", "checklist 9/9")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'service.checklist'`); n != 9 {
		t.Fatalf("%d checklist events, want 9", n)
	}
	// Saving again without changes records nothing.
	r = admin.post(base+"/checklist", allChecklist(answers))
	mustContain(t, admin.follow(r), "Nessuna modifica da salvare.")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'service.checklist'`); n != 9 {
		t.Fatalf("%d checklist events after an unchanged save, want 9", n)
	}
}

// The justification hint speaks of "Non applicabile" only where it can be
// chosen.
func TestChecklistJustificationHint(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	r := admin.get(fmt.Sprintf("/i/%d/services/%s/checklist", inst, sid))
	mustContain(t, r,
		`<p class="hint" id="f-legal_basis-justification-hint">Facoltativa`,
		`<p class="hint" id="f-minimisation-justification-hint">Obbligatoria se scegli «Non applicabile».`,
		`<p class="hint" id="f-dpia-justification-hint">Obbligatoria se scegli «Non applicabile» o se la DPIA non è necessaria.`)
}

// A double click on "Crea il servizio" (two requests at once) makes one
// service; the second request gets a field error.
func TestCreateServiceTwiceAtOnce(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = admin.post(fmt.Sprintf("/i/%d/services", inst), url.Values{"name": {"Mensa scolastica"}, "scope": {"LOCAL"}}).Status
		}()
	}
	wg.Wait()
	if n := e.count(`SELECT count(*) FROM services WHERE name = 'Mensa scolastica'`); n != 1 {
		t.Fatalf("%d services from one double click (statuses %v), want 1", n, statuses)
	}
	r := admin.post(fmt.Sprintf("/i/%d/services", inst), url.Values{"name": {"MENSA scolastica"}, "scope": {"LOCAL"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("same name again: %d, want 422", r.Status)
	}
	mustContain(t, r, `aria-invalid="true"`, "Il tuo ente ha già un servizio in preparazione chiamato «MENSA scolastica»")
}

// The review page shows values in words, not codes.
func TestReviewPageInWords(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard("TARI"))
	e.completeChecklist(admin, inst, sid)
	if r := admin.post(base+"/submit", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", r.Status, snippet(r.Body))
	}
	pa := e.platformAdmin("root@sportello.example.it")
	r := pa.get("/admin/reviews/" + sid)
	mustContain(t, r, "<td>Locale</td>", "<td>Tributi</td>", "<td>No</td>",
		"Base giuridica:</span> Compito di interesse pubblico (lett. e)",
		"Categorie di dati:</span> Dati identificativi, Dati di pagamento",
		"Esito:</span> Non necessaria",
		"Accetto i termini sul trattamento dei dati della piattaforma:</span> Sì")
	for _, code := range []string{">LOCAL<", ">taxes<", "public_task", "not_required", "accepted:", "basis:"} {
		if strings.Contains(r.Body, code) {
			t.Errorf("the review page shows the code %q", code)
		}
	}
}

// approveService takes a new service through card, checklist, submission
// and approval.
func (e *testEnv) approveService(admin *client, inst int64, name string) (sid string, pa *client) {
	e.t.Helper()
	sid = e.createService(admin, inst, name)
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard(name))
	e.completeChecklist(admin, inst, sid)
	admin.post(base+"/submit", nil)
	pa = e.platformAdmin("root@sportello.example.it")
	if r := pa.decide(sid, "approve", nil); r.Status != http.StatusSeeOther {
		e.t.Fatalf("approve: %d %s", r.Status, snippet(r.Body))
	}
	return sid, pa
}

// Saving an unchanged card of an approved service opens no version; a
// draft of an approved service can be discarded (audited), the version in
// force stays.
func TestUnchangedCardAndDiscard(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid, _ := e.approveService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	r := admin.post(base+"/card", validCard("TARI"))
	mustContain(t, admin.follow(r), "Nessuna modifica da salvare.")
	if got := e.versionStates(sid); got != "1:approved" {
		t.Fatalf("an unchanged save left versions %s", got)
	}
	// A change of technical settings alone opens no version either.
	settings := validCard("TARI")
	settings.Set("recipients", "RSSMRA85T10A562S\nRSSMRA80A01H501U")
	r = admin.post(base+"/card", settings)
	mustContain(t, admin.follow(r), "Impostazioni tecniche salvate")
	if got := e.versionStates(sid); got != "1:approved" {
		t.Fatalf("a settings change left versions %s", got)
	}
	mustContain(t, admin.get(fmt.Sprintf("/i/%d/audit", inst)), "Impostazioni tecniche cambiate", "codici fiscali di prova: 2, reti autorizzate: 0")

	changed := validCard("TARI rifiuti")
	admin.post(base+"/card", changed)
	if got := e.versionStates(sid); got != "1:approved 2:draft" {
		t.Fatalf("states %s", got)
	}
	mustContain(t, admin.get(base), "Annulla le modifiche")
	r = admin.post(base+"/discard", nil)
	mustContain(t, admin.follow(r), "Modifiche annullate: resta in vigore la versione 1.")
	if got := e.versionStates(sid); got != "1:approved 2:superseded" {
		t.Fatalf("after discard: %s", got)
	}
	if n := e.count(`SELECT count(*) FROM services WHERE public_id = ? AND name = 'TARI' AND working_version_id IS NULL`, sid); n != 1 {
		t.Fatal("the service does not show the version in force after discard")
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'service.discard'`); n != 1 {
		t.Fatal("discard not audited")
	}
}

// Under review the card's fields are read-only and the technical settings
// can be saved.
func TestUnderReviewSettingsOnly(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard("TARI"))
	e.completeChecklist(admin, inst, sid)
	admin.post(base+"/submit", nil)
	page := admin.get(base + "/card")
	mustContain(t, page, "<fieldset disabled>", "Salva le impostazioni tecniche")
	r := admin.post(base+"/card", url.Values{"recipients": {"RSSMRA80A01H501U"}, "cidrs": {"192.0.2.0/24"}})
	mustContain(t, admin.follow(r), "Impostazioni tecniche salvate")
	if n := e.count(`SELECT count(*) FROM services WHERE public_id = ? AND authorized_cidrs LIKE '%192.0.2.0/24%' AND authorized_recipients LIKE '%RSSMRA80A01H501U%'`, sid); n != 1 {
		t.Fatal("technical settings not saved under review")
	}
	if got := e.versionStates(sid); got != "1:submitted" {
		t.Fatalf("states %s", got)
	}
	// A card stored before a rule existed (a tab in the office's name,
	// refused since) does not block the technical settings under review.
	if _, err := e.DB.W.Exec(`UPDATE service_versions SET card = json_set(card, '$.department_name', 'Ufficio'||char(9)||'Tributi')
		WHERE service_id = (SELECT id FROM services WHERE public_id = ?)`, sid); err != nil {
		t.Fatal(err)
	}
	r = admin.post(base+"/card", url.Values{"recipients": {"RSSMRA85T10A562S"}, "cidrs": {""}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("settings under review with an older card: %d %s", r.Status, snippet(r.Body))
	}
	if n := e.count(`SELECT count(*) FROM services WHERE public_id = ? AND authorized_recipients = '["RSSMRA85T10A562S"]'`, sid); n != 1 {
		t.Fatal("technical settings not saved under review with an older card")
	}
}

// The card marks what the review needs, and its error summary follows
// the form's order.
func TestCardNeededAndErrorOrder(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	mustContain(t, admin.get(base+"/card"), `Informativa privacy (link) <span class="req">(necessario per la revisione)</span>`)
	bad := validCard("TARI")
	bad.Set("email", "non-una-email")
	bad.Set("privacy_url", "www.senza-schema.it")
	r := admin.post(base+"/card", bad)
	i, j := strings.Index(r.Body, `href="#f-email"`), strings.Index(r.Body, `href="#f-privacy_url"`)
	if i < 0 || j < 0 || i > j {
		t.Errorf("summary order: email at %d, privacy at %d (the form has email first)", i, j)
	}
}

// Citizens read a link text, not the form's label.
func TestPublicPrivacyLinkText(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	e.approveService(admin, inst, "TARI")
	r := e.newClient().get("/services")
	mustContain(t, r, `<a href="https://www.comune.example.it/privacy">Come trattiamo i tuoi dati (informativa privacy)</a>`)
	if strings.Contains(r.Body, "Informativa privacy (link)") {
		t.Error("the public page shows the form label as link text")
	}
}

// Decision flashes name the kind of thing, so the participle agrees
// ("Mensa scolastica è stato respinto" read wrong).
func TestDecisionFlashesAgree(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "Mensa scolastica")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard("Mensa scolastica"))
	e.completeChecklist(admin, inst, sid)
	admin.post(base+"/submit", nil)
	pa := e.platformAdmin("root@sportello.example.it")
	r := pa.decide(sid, "reject", url.Values{"reason": {"Manca il link all'informativa aggiornata."}})
	mustContain(t, pa.follow(r), "Il servizio «Mensa scolastica» è stato respinto")
	r = pa.post(fmt.Sprintf("/admin/institutions/%d/suspend", inst), url.Values{"reason": {"verifica"}})
	mustContain(t, pa.follow(r), "L'ente «Comune di Prova 1» è stato sospeso.")
}

// A one-letter name is told it is too short, not that it is missing.
func TestOneLetterName(t *testing.T) {
	e := newTestEnv(t)
	r := e.newClient().post("/register", url.Values{
		"inst_name": {"Comune di Prova 1"}, "inst_fiscal_code": {orgCode(1)}, "inst_pec": {"protocollo1@pec.example.it"},
		"name": {"M"}, "email": {"m@comune.example.it"}, "password": {testPassword}, "password_confirm": {testPassword},
	})
	mustContain(t, r, "Scrivi almeno 2 caratteri.")
	admin, inst := e.registerInst(2, "a@comune.example.it")
	r = admin.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {"l@comune.example.it"}, "role": {"operator"}})
	link := regexp.MustCompile(`http://sportello.test(/invite/[A-Za-z0-9_-]+)`).FindStringSubmatch(r.Body)
	if link == nil {
		t.Fatal("no invitation link")
	}
	r = e.newClient().post(link[1], url.Values{"name": {"L"}, "password": {testPassword}, "password_confirm": {testPassword}})
	mustContain(t, r, "Scrivi almeno 2 caratteri.")
}

// A suspended service's keys page offers no production keys, and the
// server refuses them.
func TestSuspendedServiceNoLiveKeys(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid, pa := e.approveService(admin, inst, "TARI")
	if r := pa.post("/admin/services/"+sid+"/suspend", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("suspend: %d", r.Status)
	}
	base := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)
	page := admin.get(base)
	mustContain(t, page, "Il servizio è sospeso: finché la sospensione è attiva non puoi creare le chiavi di produzione.")
	if strings.Contains(page.Body, `action="`+base+`/live"`) {
		t.Error("a suspended service offers to create production keys")
	}
	if r := admin.post(base+"/live", nil); r.Status != http.StatusConflict {
		t.Errorf("live keys for a suspended service: %d, want 409", r.Status)
	}
	// The badge is not part of the heading's name.
	mustContain(t, page, `<span class="badge badge-test" aria-hidden="true">`)
}

// English pages show dates as "3 Dec 2026", Italian ones as 03/12/2026.
func TestEnglishDates(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	now := e.clock.Now().In(rome)
	it := admin.get(fmt.Sprintf("/i/%d/audit", inst))
	mustContain(t, it, now.Format("02/01/2006"))
	admin.post("/lang", url.Values{"lang": {"en"}, "next": {"/"}})
	en := admin.get(fmt.Sprintf("/i/%d/audit", inst))
	mustContain(t, en, `lang="en"`, now.Format("2 Jan 2006"))
	if strings.Contains(en.Body, now.Format("02/01/2006")) {
		t.Error("the English page shows a dd/mm/yyyy date")
	}
}

// The dashboard's and list's "Cosa fare" column links to the step.
func TestNextStepLinked(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	for _, page := range []string{fmt.Sprintf("/i/%d/", inst), fmt.Sprintf("/i/%d/services", inst)} {
		mustContain(t, admin.get(page), `<a href="`+base+`/card">Completa la scheda`, `<a href="`+base+`/checklist">checklist 0/9`)
	}
}

// A draft's name is not reviewed: citizens (their inbox, notice mails)
// read services.name, so it keeps the name in force until approval.
func TestDraftNameOfAnApprovedServiceIsNotInForce(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid, pa := e.approveService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard("Ufficio Riscossioni URGENTE paga ora"))
	if got := e.versionStates(sid); got != "1:approved 2:draft" {
		t.Fatalf("states %s", got)
	}
	if n := e.count(`SELECT count(*) FROM services WHERE public_id = ? AND name = 'TARI'`, sid); n != 1 {
		t.Fatal("a draft's name was put in force before review")
	}
	e.completeChecklist(admin, inst, sid)
	admin.post(base+"/submit", nil)
	pa.decide(sid, "approve", nil)
	if n := e.count(`SELECT count(*) FROM services WHERE public_id = ? AND name = 'Ufficio Riscossioni URGENTE paga ora'`, sid); n != 1 {
		t.Fatal("the approved name is not in force")
	}
}

// A discard racing a save: the save either lands in a draft that is still
// open (or a new one) or nothing changes; never an edit on a superseded
// version with the name put in force and no draft left.
func TestDiscardRacingASaveLosesNothing(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid, _ := e.approveService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	for i := 0; i < 20; i++ {
		admin.post(base+"/card", validCard(fmt.Sprintf("TARI bozza %d", i)))
		name := fmt.Sprintf("TARI nuova %d", i)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); admin.post(base+"/discard", nil) }()
		go func() { defer wg.Done(); admin.post(base+"/card", validCard(name)) }()
		wg.Wait()
		var st struct {
			Name    string  `db:"name"`
			Working *string `db:"card"`
		}
		if err := e.DB.R.Get(&st, `SELECT s.name, v.card FROM services s LEFT JOIN service_versions v ON v.id = s.working_version_id WHERE s.public_id = ?`, sid); err != nil {
			t.Fatal(err)
		}
		if st.Name != "TARI" {
			t.Fatalf("round %d: name in force %q, want the approved 'TARI'", i, st.Name)
		}
		// Whichever committed last decides: after the save, its draft is
		// open with the saved name; after the discard, no draft.
		var lastSave, lastDiscard int64
		_ = e.DB.R.Get(&lastSave, `SELECT coalesce(max(id), 0) FROM audit_events WHERE action = 'service.card'`)
		_ = e.DB.R.Get(&lastDiscard, `SELECT coalesce(max(id), 0) FROM audit_events WHERE action = 'service.discard'`)
		switch {
		case lastSave > lastDiscard && (st.Working == nil || !strings.Contains(*st.Working, name)):
			t.Fatalf("round %d: the save came after the discard but no open draft has it (lost edit)", i)
		case lastDiscard > lastSave && st.Working != nil:
			t.Fatalf("round %d: the discard came last but a draft is open", i)
		}
	}
}

// shownDigests reads the "shown" fields a checklist page carries.
func shownDigests(r resp) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`name="([a-z_]+)\.shown" value="([0-9a-f]+)"`).FindAllStringSubmatch(r.Body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// withShown adds a page's "shown" fields to a checklist form.
func withShown(form url.Values, shown map[string]string) url.Values {
	for id, d := range shown {
		form.Set(id+".shown", d)
	}
	return form
}

// Two colleagues on the checklist: B's page was loaded before A saved the
// retention point; B then saves another point from that page. A's answer
// stays (B did not touch it), B's change is stored.
func TestChecklistSaveFromAnOlderPageKeepsAColleaguesAnswer(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	sid := e.createService(admin, inst, "TARI")
	base := fmt.Sprintf("/i/%d/services/%s", inst, sid)
	admin.post(base+"/card", validCard("TARI"))
	e.completeChecklist(admin, inst, sid)
	colleague := e.inviteAndJoin(admin, inst, "b@comune.example.it", "operator")

	older := shownDigests(colleague.get(base + "/checklist"))
	if len(older) != 9 {
		t.Fatalf("%d shown digests on the page, want 9", len(older))
	}

	answers := map[string]url.Values{}
	for k, v := range checklistAnswers {
		answers[k] = v
	}
	answers["retention"] = url.Values{"state": {"done"}, "f_period": {"dieci anni, come da massimario di scarto"}}
	r := admin.post(base+"/checklist", withShown(allChecklist(answers), shownDigests(admin.get(base+"/checklist"))))
	mustContain(t, admin.follow(r), "1 punto salvato")

	// B's page still shows the old retention answer; B changes the DPO contact.
	stale := map[string]url.Values{}
	for k, v := range checklistAnswers {
		stale[k] = v
	}
	stale["controller_dpo"] = url.Values{"state": {"done"}, "f_controller": {"Comune di Prova"}, "f_dpo_contact": {"dpo@comune.example.it"}}
	r = colleague.post(base+"/checklist", withShown(allChecklist(stale), older))
	if r.Status != http.StatusSeeOther {
		t.Fatalf("colleague's save: %d %s", r.Status, snippet(r.Body))
	}
	card := e.versionChecklist(sid)
	if !strings.Contains(card, "dieci anni") {
		t.Errorf("the colleague's older page put the old retention answer back: %s", card)
	}
	if !strings.Contains(card, "dpo@comune.example.it") {
		t.Errorf("the colleague's change was not stored: %s", card)
	}
}

// versionChecklist is the checklist JSON of the service's current version.
func (e *testEnv) versionChecklist(sid string) string {
	e.t.Helper()
	var s string
	if err := e.DB.R.Get(&s, `SELECT v.checklist FROM service_versions v JOIN services s ON s.id = v.service_id
		WHERE s.public_id = ? ORDER BY v.version_no DESC LIMIT 1`, sid); err != nil {
		e.t.Fatal(err)
	}
	return s
}
