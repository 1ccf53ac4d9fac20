package portal

import (
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"sportello/gateway"
	"sportello/messaging/send"
)

// The dashboard shows, per service, this week's test quota and the last
// seven days' delivery outcomes, counting only the institution's own
// messages.
func TestDashboardShowsQuotaAndDeliveries(t *testing.T) {
	e := newTestEnv(t)
	ca, ia := e.registerInst(1, "anna@comune-a.it")
	cb, ib := e.registerInst(2, "bruno@comune-b.it")
	sa := e.createService(ca, ia, "Promemoria TARI")
	sb := e.createService(cb, ib, "Mensa scolastica")

	var idA, idB int64
	if err := e.DB.R.Get(&idA, `SELECT id FROM services WHERE public_id = ?`, sa); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.R.Get(&idB, `SELECT id FROM services WHERE public_id = ?`, sb); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	week, _ := gateway.WeekOf(now)
	e.DB.W.MustExec(`INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, ?, 12), (?, ?, 700)`, idA, week, idB, week)
	lastWeek, _ := gateway.WeekOf(now.Add(-7 * 24 * time.Hour))
	e.DB.W.MustExec(`INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, ?, 999)`, idA, lastWeek)

	msg := func(svc, inst int64, status string, at time.Time) {
		e.DB.W.MustExec(`INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, time_to_live, status, created_at)
			VALUES (?, ?, ?, 'RSSMRA85T10A562S', 'test', 3600, ?, ?)`, send.NewID(at), svc, inst, status, at)
	}
	for range 3 {
		msg(idA, ia, "PROCESSED", now.Add(-time.Hour))
	}
	msg(idA, ia, "REJECTED", now.Add(-2*24*time.Hour))
	msg(idA, ia, "ACCEPTED", now)
	msg(idA, ia, "PROCESSED", now.Add(-8*24*time.Hour)) // older than a week: not counted
	for range 5 {
		msg(idB, ib, "PROCESSED", now) // another institution's service
	}

	page := ca.get(fmt.Sprintf("/i/%d/", ia))
	mustContain(t, page, "12/1000", "Consegnati: 3", "rifiutati: 1", "in corso: 1", "Promemoria TARI")
	mustNotContain(t, page, "Mensa scolastica", "700/1000", "999/1000", "Consegnati: 4", "Consegnati: 5")

	page = cb.get(fmt.Sprintf("/i/%d/", ib))
	mustContain(t, page, "700/1000", "Consegnati: 5")
	mustNotContain(t, page, "rifiutati")

	// A service with no messages says so instead of showing zeros.
	e.createService(ca, ia, "Servizi cimiteriali")
	page = ca.get(fmt.Sprintf("/i/%d/", ia))
	mustContain(t, page, "Nessun messaggio", "0/1000")
}

func mustNotContain(t *testing.T, r resp, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(html.UnescapeString(r.Body), p) {
			t.Errorf("page shows %q but should not:\n%s", p, snippet(r.Body))
		}
	}
}
