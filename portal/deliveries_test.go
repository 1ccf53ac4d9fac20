package portal

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"sportello/db/dbtest"
	"sportello/messaging/delivery"
	"sportello/messaging/delivery/deliverytest"
	"sportello/messaging/send"
)

// The delivery pages show outcomes with masked fiscal codes, and the
// sandbox renders test messages (sanitized Markdown) as the app does.
func TestServiceDeliveryPages(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(71, "admin71@comune.example.it")
	ctx := context.Background()
	svc, err := deliverytest.AddService(ctx, e.DB, inst, "Tributi locali", deliverytest.ServiceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	withProfile, noProfile := "RSSMRA80A01H501U", "VRDLGI70B02F205X"
	if err := deliverytest.PutProfile(ctx, e.DB, deliverytest.DefaultProfile(withProfile)); err != nil {
		t.Fatal(err)
	}
	if _, err := deliverytest.Insert(ctx, e.DB, deliverytest.Message{Service: svc, FiscalCode: withProfile, Mode: "test",
		Subject: "Prova di invio dal comune", Markdown: "Testo di **prova** con <script>alert(1)</script> un link [qui](javascript:alert(1)) e basta davvero.",
		DueDate: "2027-01-31T23:00:00Z", Payment: map[string]any{"amount": 12550, "notice_number": "012345678901234567", "invalid_after_due_date": true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := deliverytest.Insert(ctx, e.DB, deliverytest.Message{Service: svc, FiscalCode: noProfile, Subject: "Messaggio senza destinatario"}); err != nil {
		t.Fatal(err)
	}
	d, err := delivery.New(delivery.Config{DB: e.DB, Logger: e.App.Logger})
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := d.ProcessBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	base := fmt.Sprintf("/i/%d/services/%s", inst, svc.PublicID)
	r := admin.get(base + "/messages")
	if r.Status != http.StatusOK {
		t.Fatalf("messages page: %d %s", r.Status, snippet(r.Body))
	}
	mustContain(t, r, "Prova di invio dal comune", "Messaggio senza destinatario", "Consegnato nell'area messaggi", "Rifiutato",
		"il cittadino non ha un profilo")
	if strings.Contains(r.Body, withProfile) || strings.Contains(r.Body, noProfile) {
		t.Fatal("a full fiscal code is on the page")
	}
	r = admin.get(base + "/sandbox")
	if r.Status != http.StatusOK {
		t.Fatalf("sandbox page: %d %s", r.Status, snippet(r.Body))
	}
	// The due date as the citizen app shows it: the day in Rome, in words.
	mustContain(t, r, "Prova di invio dal comune", "<strong>prova</strong>", "Scadenza: 1 febbraio 2027<", "non è più pagabile")
	if strings.Contains(r.Body, "Scadenza: 2027") {
		t.Fatalf("sandbox shows the raw due date:\n%s", snippet(r.Body))
	}
	if strings.Contains(r.Body, "<script>alert") || strings.Contains(r.Body, "javascript:") || strings.Contains(r.Body, "Messaggio senza destinatario") {
		t.Fatalf("sandbox shows unsafe markup or a live message:\n%s", snippet(r.Body))
	}

	// Another institution's member cannot see these pages.
	other, _ := e.registerInst(72, "admin72@comune.example.it")
	if r := other.get(base + "/messages"); r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
		t.Fatalf("other institution: %d", r.Status)
	}
	_ = time.Now
}

// Without SMTP, e-mail notices wait in mail_outbox and platform admins read
// them in the console; institution staff cannot.
func TestAdminMailOutbox(t *testing.T) {
	e := newTestEnv(t)
	staff, _ := e.registerInst(73, "admin73@comune.example.it")
	if _, err := e.DB.W.Exec(`INSERT INTO mail_outbox (message_id, to_addr, subject, body, created_at) VALUES (NULL, ?, ?, ?, ?)`,
		"cittadina@example.it", "Nuovo messaggio da Tributi", "Hai ricevuto un nuovo messaggio da Tributi.", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	// A mail that went out is listed as a record, without its text.
	if _, err := e.DB.W.Exec(`INSERT INTO mail_outbox (message_id, to_addr, subject, body, created_at, sent_at) VALUES (NULL, ?, ?, '', ?, ?)`,
		"anna@example.it", "Conferma il tuo indirizzo e-mail", time.Now().UTC(), time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB.W.Exec(`INSERT INTO mail_outbox (message_id, to_addr, subject, body, created_at, failed_at, failure) VALUES (NULL, ?, ?, ?, ?, ?, ?)`,
		"nessuno@example.it", "Conferma il tuo indirizzo e-mail", "Apri il link per confermare", time.Now().UTC(), time.Now().UTC(), "550 5.1.1 mailbox unavailable"); err != nil {
		t.Fatal(err)
	}
	pa := e.platformAdmin("root73@example.it")
	r := pa.get("/admin/mail")
	if r.Status != http.StatusOK {
		t.Fatalf("admin mail page: %d", r.Status)
	}
	mustContain(t, r, "cittadina@example.it", "Nuovo messaggio da Tributi", "Non inviata", "Hai ricevuto un nuovo messaggio",
		"anna@example.it", "Conferma il tuo indirizzo", "Inviata il", "Testo non conservato dopo",
		"nessuno@example.it", "Non inviata: tentativi sospesi il", "Motivo:", "550 5.1.1 mailbox unavailable", "Apri il link per confermare")
	if r := staff.get("/admin/mail"); r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
		t.Fatalf("institution admin on the console mail page: %d", r.Status)
	}
}

// The service messages page counts and looks for notification problems
// over the last week, from a time-floor id on messages(service_id, id):
// over the service's whole history both read every message it ever sent
// (0.7 s a page for a service with 200,000 messages in a year).
func TestServiceMessagesPageReadsTheLastWeek(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(73, "admin73@comune.example.it")
	sid := e.createService(admin, inst, "Tributi locali")
	var svc int64
	if err := e.DB.R.Get(&svc, `SELECT id FROM services WHERE public_id = ?`, sid); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	msg := func(status string, at time.Time, failure string) {
		id := send.NewID(at)
		e.DB.W.MustExec(`INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, time_to_live, status, created_at)
			VALUES (?, ?, ?, 'RSSMRA85T10A562S', 'test', 3600, ?, ?)`, id, svc, inst, status, at)
		if failure != "" {
			e.DB.W.MustExec(`INSERT INTO notifications (message_id, channel, status, attempts, last_error, updated_at)
				VALUES (?, 'email', 'FAILED', 5, ?, ?)`, id, failure, at)
		}
	}
	msg("PROCESSED", now.Add(-time.Hour), "casella piena di questa settimana")
	msg("PROCESSED", now.Add(-2*time.Hour), "")
	msg("REJECTED", now.Add(-20*24*time.Hour), "casella inesistente del mese scorso")

	r := admin.get(fmt.Sprintf("/i/%d/services/%s/messages", inst, sid))
	mustContain(t, r, "negli ultimi 7 giorni", "casella piena di questa settimana")
	mustNotContain(t, r, "casella inesistente del mese scorso", `<span class="stat-value">1</span> <span class="stat-label">Rifiutato`)

	floor := send.IDFloor(now.Add(-deliveryWindow))
	for name, q := range map[string]string{"counts": sqlDeliveryCounts, "failures": sqlDeliveryFailures} {
		plan := dbtest.Plan(t, e.DB, q, svc, inst, floor)
		if !strings.Contains(plan, "USING INDEX messages_service (service_id=? AND id>?)") {
			t.Errorf("%s does not start from the week's floor id:\n%s", name, plan)
		}
	}
}

// The sandbox looks for test messages over the last 30 days (as long as
// content is kept): a service in production for months walked its whole
// history of live messages to find none.
func TestSandboxReadsTheLastMonth(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(74, "admin74@comune.example.it")
	sid := e.createService(admin, inst, "Tributi locali")
	var svc int64
	if err := e.DB.R.Get(&svc, `SELECT id FROM services WHERE public_id = ?`, sid); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	msg := func(subject string, at time.Time) {
		e.DB.W.MustExec(`INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, status, created_at)
			VALUES (?, ?, ?, 'RSSMRA85T10A562S', 'test', ?, 3600, 'PROCESSED', ?)`, send.NewID(at), svc, inst,
			fmt.Sprintf(`{"subject":%q,"markdown":"Testo del messaggio di prova per la sandbox del servizio."}`, subject), at)
	}
	msg("Prova di questa settimana", now.Add(-48*time.Hour))
	msg("Prova di due mesi fa", now.Add(-60*24*time.Hour))
	r := admin.get(fmt.Sprintf("/i/%d/services/%s/sandbox", inst, sid))
	mustContain(t, r, "Prova di questa settimana", "negli ultimi 30 giorni")
	mustNotContain(t, r, "Prova di due mesi fa")
}
