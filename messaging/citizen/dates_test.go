package citizen

import (
	"net/url"
	"strings"
	"testing"

	"sportello/messaging/delivery/deliverytest"
)

func TestDueDate(t *testing.T) {
	for _, c := range []struct{ lang, in, want string }{
		{"it", "2027-01-31T23:00:00Z", "1 febbraio 2027"}, // midnight in Rome (CET): the day alone
		{"en", "2027-01-31T23:00:00Z", "1 February 2027"},
		{"it", "2026-07-15T10:30:00Z", "15 luglio 2026, ore 12:30"}, // CEST
		{"en", "2026-12-31T22:59:59Z", "31 December 2026, 23:59"},
		{"it", "2027-02-01T00:00:00+01:00", "1 febbraio 2027"},
		{"de", "2027-01-31T23:00:00Z", "1 febbraio 2027"},
		{"it", "domani", "domani"},
	} {
		if got := DueDate(c.lang, c.in); got != c.want {
			t.Errorf("DueDate(%s, %s) = %q, want %q", c.lang, c.in, got, c.want)
		}
	}
}

// The app shows a due date in Rome's time, in words and in the page's
// language, on the message and in the inbox, and what
// invalid_after_due_date means.
func TestWebDueDate(t *testing.T) {
	e := newEnv(t)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := person(14)
	b := e.browser()
	b.post("/citizen/login", url.Values{"fiscal_code": {fc}})
	b.post("/citizen/app/profile", url.Values{"mode": {"AUTO"}, "is_inbox_enabled": {"on"}})
	id := e.send(s, fc, deliverytest.Message{DueDate: "2027-01-31T23:00:00Z",
		Payment: map[string]any{"amount": 12550, "notice_number": "012345678901234567", "invalid_after_due_date": true}})
	e.deliver()
	for _, path := range []string{"/citizen/app/messages", "/citizen/app/messages/" + id} {
		_, body := b.get(path)
		if !strings.Contains(body, "Scadenza: 1 febbraio 2027<") || strings.Contains(body, "Scadenza: 2027") {
			t.Fatalf("%s: due date not in Italian words:\n%s", path, body)
		}
	}
	_, body := b.get("/citizen/app/messages/" + id)
	if !strings.Contains(body, "non è più pagabile") {
		t.Fatal("the message page does not say the notice cannot be paid after the due date")
	}
	b.post("/citizen/lang", url.Values{"lang": {"en"}})
	if _, body = b.get("/citizen/app/messages/" + id); !strings.Contains(body, "Due date: 1 February 2027<") || !strings.Contains(body, "can no longer be paid") {
		t.Fatalf("English page:\n%s", body)
	}
}
