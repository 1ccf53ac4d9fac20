package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

func TestInstitutionSettings(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "anna@comune.example.it")
	path := fmt.Sprintf("/i/%d/settings", inst)

	page := admin.get(path)
	mustContain(t, page, "Impostazioni dell'ente", "Comune di Prova 1", "protocollo1@pec.example.it", orgCode(1))

	// Bad input: errors next to the fields, nothing changes.
	r := admin.post(path, url.Values{"inst_name": {"X"}, "inst_pec": {"non-una-pec"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad input: %d", r.Status)
	}
	mustContain(t, r, "almeno 3 caratteri", "Scrivi un indirizzo email valido")
	if n := e.count(`SELECT count(*) FROM institutions WHERE id = ? AND name = 'Comune di Prova 1'`, inst); n != 1 {
		t.Fatal("a refused edit changed the institution")
	}

	r = admin.post(path, url.Values{"inst_name": {"Comune di Prova Unito"}, "inst_pec": {"Nuova@PEC.example.it"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.Status, snippet(r.Body))
	}
	mustContain(t, admin.follow(r), "Impostazioni salvate", "Comune di Prova Unito", "nuova@pec.example.it")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'institution.update' AND institution_id = ? AND detail LIKE '%Comune di Prova 1 → Comune di Prova Unito%'`, inst); n != 1 {
		t.Fatalf("%d audit events for the change", n)
	}
	// Saving without changes records nothing new.
	admin.post(path, url.Values{"inst_name": {"Comune di Prova Unito"}, "inst_pec": {"nuova@pec.example.it"}})
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'institution.update'`); n != 1 {
		t.Fatalf("%d audit events after a save without changes", n)
	}

	// Operators and other institutions' admins cannot change it.
	op := e.inviteAndJoin(admin, inst, "marco@comune.example.it", "operator")
	if r := op.post(path, url.Values{"inst_name": {"Preso"}, "inst_pec": {"x@pec.example.it"}}); r.Status != http.StatusForbidden {
		t.Fatalf("operator: %d", r.Status)
	}
	mustNotContain(t, op.get(fmt.Sprintf("/i/%d/", inst)), "/settings")
	other, _ := e.registerInst(2, "bruno@comune-b.example.it")
	if r := other.post(path, url.Values{"inst_name": {"Preso"}, "inst_pec": {"x@pec.example.it"}}); r.Status != http.StatusNotFound {
		t.Fatalf("other institution's admin: %d", r.Status)
	}
	if n := e.count(`SELECT count(*) FROM institutions WHERE name = 'Preso'`); n != 0 {
		t.Fatal("a refused request renamed the institution")
	}
}
