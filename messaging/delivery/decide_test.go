package delivery

import (
	"fmt"
	"testing"

	"sportello/messaging/delivery/deliverytest"
	"sportello/messaging/preferences"
)

// TestDecisions runs one message per case through the real pipeline and
// checks its status, rejection reason and the notices queued for it.
func TestDecisions(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{PushURL: "http://127.0.0.1:9/push", PushSecret: []byte("s")})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	other := e.service("Anagrafe", deliverytest.ServiceOpts{})
	secureSvc := e.service("Sanità", deliverytest.ServiceOpts{RequireSecure: true})

	type prefSpec struct {
		inbox, email, webhook bool
		version               int
	}
	cases := []struct {
		name      string
		noProfile bool
		edit      func(p *deliverytest.Profile)
		pref      *prefSpec
		service   deliverytest.Service
		secure    bool
		status    string
		reason    string
		email     bool
		webhook   bool
	}{
		{name: "no profile", noProfile: true, status: "REJECTED", reason: "USER_NOT_FOUND"},
		{name: "legacy, nothing blocked", status: "PROCESSED", email: true, webhook: true},
		{name: "legacy, inbox blocked", edit: func(p *deliverytest.Profile) { p.Blocked = map[string][]string{svc.PublicID: {"INBOX"}} },
			status: "REJECTED", reason: "SERVICE_NOT_ALLOWED"},
		{name: "legacy, email blocked", edit: func(p *deliverytest.Profile) { p.Blocked = map[string][]string{svc.PublicID: {"EMAIL"}} },
			status: "PROCESSED", webhook: true},
		{name: "legacy, webhook blocked", edit: func(p *deliverytest.Profile) { p.Blocked = map[string][]string{svc.PublicID: {"WEBHOOK"}} },
			status: "PROCESSED", email: true},
		{name: "legacy, another service blocked", edit: func(p *deliverytest.Profile) {
			p.Blocked = map[string][]string{other.PublicID: {"INBOX", "EMAIL", "WEBHOOK"}}
		}, status: "PROCESSED", email: true, webhook: true},
		{name: "legacy, per-service preference ignored", pref: &prefSpec{false, false, false, 0},
			status: "PROCESSED", email: true, webhook: true},
		{name: "auto, no preference", edit: mode(preferences.Auto, 1), status: "PROCESSED", email: true, webhook: true},
		{name: "auto, service turned off", edit: mode(preferences.Auto, 1), pref: &prefSpec{false, true, true, 1},
			status: "REJECTED", reason: "SERVICE_NOT_ALLOWED"},
		{name: "auto, email off for service", edit: mode(preferences.Auto, 1), pref: &prefSpec{true, false, true, 1},
			status: "PROCESSED", webhook: true},
		{name: "auto, stale preference ignored", edit: mode(preferences.Auto, 2), pref: &prefSpec{false, false, false, 1},
			status: "PROCESSED", email: true, webhook: true},
		{name: "manual, no preference", edit: mode(preferences.Manual, 1), status: "REJECTED", reason: "SERVICE_NOT_ALLOWED"},
		{name: "manual, service turned on", edit: mode(preferences.Manual, 1), pref: &prefSpec{true, true, false, 1},
			status: "PROCESSED", email: true},
		{name: "manual, inbox only", edit: mode(preferences.Manual, 3), pref: &prefSpec{true, false, false, 3},
			status: "PROCESSED"},
		{name: "manual, stale preference ignored", edit: mode(preferences.Manual, 2), pref: &prefSpec{true, true, true, 1},
			status: "REJECTED", reason: "SERVICE_NOT_ALLOWED"},
		{name: "manual, preference for another service only", edit: mode(preferences.Manual, 1), pref: &prefSpec{true, true, true, 1},
			service: other, status: "REJECTED", reason: "SERVICE_NOT_ALLOWED"},
		{name: "inbox disabled in profile", edit: func(p *deliverytest.Profile) { p.InboxEnabled = false },
			status: "REJECTED", reason: "SERVICE_NOT_ALLOWED"},
		{name: "secure message: no e-mail", secure: true, status: "PROCESSED", webhook: true},
		{name: "secure service: no e-mail", service: secureSvc, status: "PROCESSED", webhook: true},
		{name: "email enabled, not validated", edit: func(p *deliverytest.Profile) { p.EmailValidated = false },
			status: "PROCESSED", webhook: true},
		{name: "email validated, disabled", edit: func(p *deliverytest.Profile) { p.EmailEnabled = false },
			status: "PROCESSED", webhook: true},
		{name: "email enabled and validated, no address", edit: func(p *deliverytest.Profile) { p.Email = "" },
			status: "PROCESSED", webhook: true},
		{name: "push disabled in profile", edit: func(p *deliverytest.Profile) { p.WebhookEnabled = false },
			status: "PROCESSED", email: true},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		fc := fmt.Sprintf("AAAAAA00A00A%03dX", i) // distinct citizens; the pipeline does not validate codes
		if !c.noProfile {
			p := deliverytest.DefaultProfile(fc)
			if c.edit != nil {
				c.edit(&p)
			}
			e.profile(p)
		}
		if c.pref != nil {
			e.pref(fc, svc.ID, c.pref.inbox, c.pref.email, c.pref.webhook, c.pref.version)
		}
		s := svc
		if c.service.ID != 0 {
			s = c.service
		}
		ids[i] = e.send(deliverytest.Message{Service: s, FiscalCode: fc, Secure: c.secure})
	}
	if n := e.drain(d); n != len(cases) {
		t.Fatalf("processed %d messages, want %d", n, len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, reason := e.state(ids[i])
			if status != c.status || reason != c.reason {
				t.Errorf("status %s/%s, want %s/%s", status, reason, c.status, c.reason)
			}
			inInbox := e.count(`SELECT count(*) FROM inbox WHERE message_id = ?`, ids[i])
			if want := map[bool]int{true: 1, false: 0}[c.status == "PROCESSED"]; inInbox != want {
				t.Errorf("inbox rows %d, want %d", inInbox, want)
			}
			n := e.notices(ids[i])
			if _, ok := n["email"]; ok != c.email {
				t.Errorf("email notice queued = %v, want %v", ok, c.email)
			}
			if _, ok := n["webhook"]; ok != c.webhook {
				t.Errorf("push notice queued = %v, want %v", ok, c.webhook)
			}
		})
	}
	if left := e.count(`SELECT count(*) FROM outbox`); left != 0 {
		t.Errorf("%d outbox rows left", left)
	}
}

func mode(m string, version int) func(p *deliverytest.Profile) {
	return func(p *deliverytest.Profile) { p.Mode, p.Version = m, version }
}

// Without a push webhook configured no push notice is queued at all.
func TestNoPushWithoutWebhook(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	e.profile(deliverytest.DefaultProfile("BBBBBB00A00A000B"))
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: "BBBBBB00A00A000B"})
	e.drain(d)
	n := e.notices(id)
	if _, ok := n["webhook"]; ok || n["email"] == "" {
		t.Fatalf("notices %v, want e-mail only", n)
	}
}
