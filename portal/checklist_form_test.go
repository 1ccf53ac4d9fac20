package portal

import (
	"fmt"
	"net/http"
	"net/url"
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
