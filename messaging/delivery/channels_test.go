package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"sportello/messaging/channels"
	"sportello/messaging/delivery/deliverytest"
)

// smtpServer is a real SMTP server on loopback that keeps what it receives.
type smtpServer struct {
	mu       sync.Mutex
	mails    []receivedMail
	failNext atomic.Int32 // answer this many DATA commands with 451
	url      string
}

type receivedMail struct {
	from, to, data string
}

type smtpSession struct {
	s        *smtpServer
	from, to string
	authed   bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "mailer" || pass != "segreto" {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.s.failNext.Add(-1) >= 0 {
		return &smtp.SMTPError{Code: 451, Message: "try again later"}
	}
	s.s.mu.Lock()
	s.s.mails = append(s.s.mails, receivedMail{s.from, s.to, string(b)})
	s.s.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	srv := &smtpServer{}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &smtpSession{s: srv}, nil })
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	srv.url = "smtp://mailer:segreto@" + ln.Addr().String() + "?from=noreply@sportello.test"
	return srv
}

func (s *smtpServer) received() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.mails...)
}

func TestEmailThroughSMTP(t *testing.T) {
	e := newEnv(t)
	mail := startSMTP(t)
	mail.failNext.Store(1) // the first try gets a temporary refusal
	d := e.delivery(Config{SMTPURL: mail.url, BaseURL: "https://sportello.test", RetryBase: time.Minute})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "GGGGGG00A00A000G"
	p := deliverytest.DefaultProfile(fc)
	p.Email = "mario.rossi@example.it"
	e.profile(p)
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, Subject: "Scadenza TARI di dicembre"})
	secure := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, Secure: true})
	e.drain(d)
	if _, ok := e.notices(secure)["email"]; ok {
		t.Fatal("a secure message queued an e-mail")
	}

	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "THROTTLED" {
		t.Fatalf("after a 451: %s, want THROTTLED", got)
	}
	if n, _ := d.SendDueNotices(e.ctx); n != 0 {
		t.Fatal("retried before the backoff elapsed")
	}
	e.clock.Advance(time.Minute)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "SENT" {
		t.Fatalf("after retry: %s, want SENT", got)
	}
	got := mail.received()
	if len(got) != 1 {
		t.Fatalf("server got %d mails, want 1", len(got))
	}
	m := got[0]
	if m.to != "mario.rossi@example.it" || m.from != "noreply@sportello.test" {
		t.Errorf("envelope %s → %s", m.from, m.to)
	}
	for _, want := range []string{"Subject: Nuovo messaggio da Tributi", "Scadenza TARI di dicembre", "https://sportello.test/citizen/app/messages/" + id} {
		if !strings.Contains(strings.ReplaceAll(m.data, "=\r\n", ""), want) {
			t.Errorf("mail lacks %q:\n%s", want, m.data)
		}
	}
	if strings.Contains(m.data, "rata") {
		t.Error("the e-mail carries the message body; it must be a notice only")
	}
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE message_id = ? AND sent_at IS NOT NULL AND body = ''`, id); n != 1 {
		t.Errorf("mail_outbox record rows without their text: %d, want 1", n)
	}
}

func TestEmailWithoutSMTPGoesToMailOutbox(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "HHHHHH00A00A000H"
	p := deliverytest.DefaultProfile(fc)
	p.PreferredLangs = []string{"en_GB"}
	e.profile(p)
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	var row struct {
		To      string     `db:"to_addr"`
		Subject string     `db:"subject"`
		SentAt  *time.Time `db:"sent_at"`
	}
	if err := e.db.R.Get(&row, `SELECT to_addr, subject, sent_at FROM mail_outbox WHERE message_id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if row.To != p.Email || row.Subject != "New message from Tributi" || row.SentAt != nil {
		t.Fatalf("mail_outbox row %+v", row)
	}
	if e.count(`SELECT count(*) FROM mail_outbox WHERE message_id = ? AND body LIKE '%Tributi%'`, id) != 1 {
		t.Fatal("an unsent notice must keep its text for admins to read")
	}
	// Written to the outbox is not sent: the channel is not SENT, and a
	// later round neither sends it nor writes a second row.
	if got := e.notices(id)["email"]; got != "THROTTLED" {
		t.Fatalf("e-mail notice without SMTP: %s, want THROTTLED", got)
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE message_id = ?`, id); n != 1 || e.notices(id)["email"] != "THROTTLED" {
		t.Fatalf("after another round: %d rows, notice %s", n, e.notices(id)["email"])
	}
	// At the end of the time to live it expires, saying why, and its mail
	// is recorded as given up on, text kept.
	e.clock.Advance(time.Hour)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "EXPIRED" ||
		e.count(`SELECT count(*) FROM notifications WHERE message_id = ? AND last_error LIKE 'no SMTP server%'`, id) != 1 {
		t.Fatalf("at the end of the time to live: %s, want EXPIRED with the reason", got)
	}
	if e.count(`SELECT count(*) FROM mail_outbox WHERE message_id = ? AND failed_at IS NOT NULL AND sent_at IS NULL
		AND failure LIKE 'no SMTP server%' AND body LIKE '%Tributi%'`, id) != 1 {
		t.Fatal("the expired notice's mail is not recorded as given up on with its text")
	}
}

// E-mail notices queued while there was no SMTP server are sent once the
// pipeline starts with one: at once, once, and the notice becomes SENT.
func TestQueuedNoticeMailSentOnceSMTPIsConfigured(t *testing.T) {
	e := newEnv(t)
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "PPPPPP00A00A000P"
	p := deliverytest.DefaultProfile(fc)
	p.Email = "paola@example.it"
	e.profile(p)
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, TTL: 7 * 24 * 3600})
	without := e.delivery(Config{})
	e.drain(without)
	if _, err := without.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "THROTTLED" {
		t.Fatalf("without SMTP: %s, want THROTTLED", got)
	}

	mail := startSMTP(t)
	with := e.delivery(Config{SMTPURL: mail.url, NotifyPoll: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- with.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.notices(id)["email"] != "SENT" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "SENT" {
		t.Fatalf("after a start with SMTP: %s, want SENT", got)
	}
	if got := mail.received(); len(got) != 1 || got[0].to != "paola@example.it" || !strings.Contains(got[0].data, "Message-ID: <"+id+"@sportello>") {
		t.Fatalf("SMTP server received %+v, want the one notice", got)
	}
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE message_id = ? AND sent_at IS NOT NULL AND body = ''`, id); n != 1 ||
		e.count(`SELECT count(*) FROM mail_outbox`) != 1 {
		t.Fatal("the queued row is not the one marked sent (text dropped)")
	}
}

// The push webhook fails twice, then accepts: the notice goes THROTTLED,
// THROTTLED, SENT, each call signed with HMAC-SHA256.
func TestPushRetriesWithBackoff(t *testing.T) {
	e := newEnv(t)
	secret := []byte("push-secret")
	var calls atomic.Int32
	var badSig atomic.Int32
	var lastBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get(channels.HeaderTimestamp), 10, 64)
		if !channels.Verify(secret, ts, body, r.Header.Get(channels.HeaderSignature)) {
			badSig.Add(1)
		}
		lastBody.Store(body)
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d := e.delivery(Config{PushURL: srv.URL, PushSecret: secret, RetryBase: 10 * time.Second})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "IIIIII00A00A000I"
	e.profile(deliverytest.DefaultProfile(fc))
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, Secure: true, Subject: "Esito esami clinici disponibile"})
	e.drain(d)

	step := func(advance time.Duration, want string) {
		t.Helper()
		e.clock.Advance(advance)
		if _, err := d.SendDueNotices(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.notices(id)["webhook"]; got != want {
			t.Fatalf("push status %s, want %s", got, want)
		}
	}
	step(0, "THROTTLED")             // first call fails
	step(9*time.Second, "THROTTLED") // not due yet: no call
	if calls.Load() != 1 {
		t.Fatalf("calls %d before the first backoff elapsed", calls.Load())
	}
	step(time.Second, "THROTTLED")    // second call (after 10 s) fails
	step(19*time.Second, "THROTTLED") // the next backoff is 20 s
	if calls.Load() != 2 {
		t.Fatalf("calls %d: backoff did not double", calls.Load())
	}
	step(time.Second, "SENT")
	if badSig.Load() != 0 {
		t.Fatal("a push call had a bad signature")
	}
	var p PushPayload
	if err := json.Unmarshal(lastBody.Load().([]byte), &p); err != nil {
		t.Fatal(err)
	}
	if p.MessageID != id || p.Subject != "" || p.ServiceID != svc.PublicID {
		t.Fatalf("payload %+v: want the id, the service, and no subject for a secure message", p)
	}
	var attempts int
	_ = e.db.R.Get(&attempts, `SELECT attempts FROM notifications WHERE message_id = ? AND channel = 'webhook'`, id)
	if attempts != 3 {
		t.Fatalf("attempts %d, want 3", attempts)
	}
}

// A webhook that keeps failing is retried until the time to live ends,
// then the notice is EXPIRED; a 4xx refusal is FAILED at once.
func TestPushExpiryAndPermanentFailure(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	d := e.delivery(Config{PushURL: srv.URL + "/down", PushSecret: []byte("k"), RetryBase: 20 * time.Minute, RetryMax: time.Hour})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "LLLLLL00A00A000L"
	e.profile(deliverytest.DefaultProfile(fc))
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, TTL: 3600})
	e.drain(d)
	for i := 0; i < 10 && e.notices(id)["webhook"] == "THROTTLED"; i++ {
		if _, err := d.SendDueNotices(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(20 * time.Minute)
	}
	if got := e.notices(id)["webhook"]; got != "EXPIRED" {
		t.Fatalf("push status %s, want EXPIRED", got)
	}
	var attempts int
	_ = e.db.R.Get(&attempts, `SELECT attempts FROM notifications WHERE message_id = ? AND channel = 'webhook'`, id)
	if attempts < 2 || attempts > 4 {
		t.Fatalf("attempts %d within a 1 h time to live and 20/40 min backoff", attempts)
	}

	d2 := e.delivery(Config{PushURL: srv.URL + "/bad", PushSecret: []byte("k")})
	id2 := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d2)
	if _, err := d2.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id2)["webhook"]; got != "FAILED" {
		t.Fatalf("after a 400: %s, want FAILED", got)
	}
}

func TestRetentionDeletesContentKeepsStatus(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{Retention: 48 * time.Hour})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "MMMMMM00A00A000M"
	p := deliverytest.DefaultProfile(fc)
	p.EmailEnabled = false // a pending notice would hold the content back
	e.profile(p)
	old := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, CreatedAt: e.clock.Now().Add(-72 * time.Hour)})
	recent := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)
	// Old but still queued (not drained): its content is kept.
	waiting := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, CreatedAt: e.clock.Now().Add(-72 * time.Hour)})
	n, err := d.PurgeContent(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want 1", n, err)
	}
	var rows []struct {
		ID      string     `db:"id"`
		Content *string    `db:"content"`
		Deleted *time.Time `db:"content_deleted_at"`
		Status  string     `db:"status"`
	}
	if err := e.db.R.Select(&rows, `SELECT id, content, content_deleted_at, status FROM messages`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		switch r.ID {
		case old:
			if r.Content != nil || r.Deleted == nil || r.Status != "PROCESSED" {
				t.Errorf("old message: content %v deleted %v status %s", r.Content != nil, r.Deleted, r.Status)
			}
		case recent, waiting:
			if r.Content == nil {
				t.Errorf("%s lost its content", r.ID)
			}
		}
	}
	if e.count(`SELECT count(*) FROM inbox WHERE message_id = ?`, old) != 1 {
		t.Error("retention removed the inbox entry; only the content goes")
	}
}

// Mail queued without a message (address validation) goes out through
// SMTP and is marked sent; its text (the confirmation link) is not kept.
func TestQueuedMailThroughSMTP(t *testing.T) {
	e := newEnv(t)
	mail := startSMTP(t)
	d := e.delivery(Config{SMTPURL: mail.url})
	if err := e.db.WriteTx(e.ctx, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO mail_outbox (to_addr, subject, body, created_at) VALUES ('anna@example.it', 'Conferma il tuo indirizzo e-mail', 'Apri il link', ?)`, e.clock.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	n, err := d.SendQueuedMail(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("sent %d, %v", n, err)
	}
	if got := mail.received(); len(got) != 1 || got[0].to != "anna@example.it" || !strings.Contains(got[0].data, "Conferma il tuo indirizzo") {
		t.Fatalf("received %+v", got)
	}
	if e.count(`SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL`) != 1 {
		t.Fatal("not marked sent")
	}
	if e.count(`SELECT count(*) FROM mail_outbox WHERE body <> ''`) != 0 {
		t.Fatal("the sent mail's text (its confirmation link) is still stored")
	}
	if n, _ := d.SendQueuedMail(e.ctx); n != 0 {
		t.Fatal("sent twice")
	}
}

// panickingMailer panics on its first Send and then accepts.
type panickingMailer struct{ calls atomic.Int32 }

func (m *panickingMailer) Send(context.Context, channels.Mail) error {
	if m.calls.Add(1) == 1 {
		var p *channels.Mail
		_ = p.To // a nil dereference: a real runtime panic
	}
	return nil
}

// A channel that panics fails that one try (THROTTLED, retried after the
// back-off) instead of ending the process; the next try is sent.
func TestPanickingChannelIsARetriedFailure(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{RetryBase: time.Minute})
	m := &panickingMailer{}
	d.SetMailer(m)
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "GGGGGG00A00A000G"
	p := deliverytest.DefaultProfile(fc)
	p.Email = "mario.rossi@example.it"
	e.profile(p)
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "THROTTLED" {
		t.Fatalf("after the panic: %s, want THROTTLED", got)
	}
	e.clock.Advance(time.Minute)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id)["email"]; got != "SENT" || m.calls.Load() != 2 {
		t.Fatalf("after the retry: %s with %d calls, want SENT after 2", got, m.calls.Load())
	}
}

// scriptedMailer answers each address as told: "refuse" (a permanent SMTP
// refusal), "panic" (a bug in the mailer), anything else accepts. It
// counts the sends per address.
type scriptedMailer struct {
	mu    sync.Mutex
	how   map[string]string
	sends map[string]int
}

func (m *scriptedMailer) Send(_ context.Context, mail channels.Mail) error {
	m.mu.Lock()
	m.sends[mail.To]++
	how := m.how[mail.To]
	m.mu.Unlock()
	switch how {
	case "refuse":
		return fmt.Errorf("550 5.1.1 mailbox unavailable: %w", channels.ErrPermanent)
	case "panic":
		var p *channels.Mail
		_ = p.To // a nil dereference: a real runtime panic
	}
	return nil
}

// A queued mail the server refuses for good is recorded as given up on,
// with its reply, not as sent; one the mailer panics on too. Both keep
// their text (they never reached anyone), and neither holds up the mails
// after it or makes the ones before it go out again.
func TestQueuedMailRefusedOrPanickingIsRecordedOnce(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	m := &scriptedMailer{how: map[string]string{"b@example.it": "refuse", "c@example.it": "panic"}, sends: map[string]int{}}
	d.SetMailer(m)
	for _, to := range []string{"a@example.it", "b@example.it", "c@example.it", "d@example.it"} {
		if err := e.db.WriteTx(e.ctx, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`INSERT INTO mail_outbox (to_addr, subject, body, created_at) VALUES (?, 'Conferma il tuo indirizzo e-mail', 'Apri il link', ?)`, to, e.clock.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		if _, err := d.SendQueuedMail(e.ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	for to, want := range map[string]int{"a@example.it": 1, "b@example.it": 1, "c@example.it": 1, "d@example.it": 1} {
		if m.sends[to] != want {
			t.Errorf("%s: %d sends, want %d", to, m.sends[to], want)
		}
	}
	type row struct {
		To      string  `db:"to_addr"`
		Body    string  `db:"body"`
		Sent    bool    `db:"sent"`
		Failed  bool    `db:"failed"`
		Failure *string `db:"failure"`
	}
	var rows []row
	if err := e.db.R.Select(&rows, `SELECT to_addr, body, sent_at IS NOT NULL AS sent, failed_at IS NOT NULL AS failed, failure
		FROM mail_outbox ORDER BY to_addr`); err != nil {
		t.Fatal(err)
	}
	reason := func(r row) string {
		if r.Failure == nil {
			return ""
		}
		return *r.Failure
	}
	for _, r := range rows {
		switch r.To {
		case "a@example.it", "d@example.it":
			if !r.Sent || r.Failed || r.Failure != nil || r.Body != "" {
				t.Errorf("%s: %+v, want sent, text not kept", r.To, r)
			}
		case "b@example.it":
			if r.Sent || !r.Failed || !strings.Contains(reason(r), "550 5.1.1") || r.Body != "Apri il link" {
				t.Errorf("%s: %+v (reason %q), want given up on with the server's reply and its text", r.To, r, reason(r))
			}
		case "c@example.it":
			if r.Sent || !r.Failed || !strings.HasPrefix(reason(r), "mailer panicked: ") || strings.Contains(reason(r), "goroutine") || r.Body != "Apri il link" {
				t.Errorf("%s: %+v (reason %q), want given up on with the panic's first line only and its text", r.To, r, reason(r))
			}
		}
	}
}

func TestTruncateKeepsValidUTF8(t *testing.T) {
	s := "550 casella già piena"
	for n := 0; n <= len(s); n++ {
		if got := truncate(s, n); !utf8.ValidString(got) || len(got) > n || !strings.HasPrefix(s, got) {
			t.Fatalf("truncate(%q, %d) = %q", s, n, got)
		}
	}
}

// A notice read while the profile existed is not sent if the account is
// gone by the time of the try (deleted without cancelling its notices):
// the attempt checks the profile first and records a FAILED notice.
func TestNoticeForADeletedAccountIsNotSent(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d := e.delivery(Config{PushURL: srv.URL, PushSecret: []byte("k")})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "NNNNNN00A00A000N"
	e.profile(deliverytest.DefaultProfile(fc))
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)
	if _, err := e.db.W.ExecContext(e.ctx, `DELETE FROM profiles WHERE fiscal_code = ?`, fc); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.notices(id); got["webhook"] != "FAILED" || got["email"] != "FAILED" || calls.Load() != 0 {
		t.Fatalf("notices %v with %d webhook calls, want both FAILED and no call", got, calls.Load())
	}
}

// A push receiver that does not answer holds up neither e-mail nor queued
// mail, nor the record of the pushes that did go out: each channel has its
// own attempts, outcomes are written as they finish, and queued mail has
// its own loop. Before, one round shared 8 slots between the channels and
// recorded every outcome only when its slowest attempt ended.
func TestSlowPushHoldsUpNothingElse(t *testing.T) {
	e := newEnv(t)
	mail := startSMTP(t)
	release := make(chan struct{})
	var slowID atomic.Value
	slowID.Store("")
	var hanging atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get(channels.HeaderDelivery) == slowID.Load().(string) {
			hanging.Add(1)
			select { // the receiver hangs on this one
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for handlers
	d := e.delivery(Config{SMTPURL: mail.url, PushURL: srv.URL, PushSecret: []byte("k"), NotifyPoll: 10 * time.Millisecond,
		HTTPClient: &http.Client{Timeout: time.Minute}})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	var ids []string
	for i := range 20 {
		fc := fmt.Sprintf("QQQQQQ00A00A%03dQ", i)
		p := deliverytest.DefaultProfile(fc)
		p.Email = fmt.Sprintf("c%d@example.it", i)
		e.profile(p)
		ids = append(ids, e.send(deliverytest.Message{Service: svc, FiscalCode: fc}))
	}
	slowID.Store(ids[0])
	e.drain(d)
	if _, err := e.db.W.ExecContext(e.ctx, `INSERT INTO mail_outbox (to_addr, subject, body, created_at)
		VALUES ('nuovo@example.it', 'Conferma il tuo indirizzo e-mail', 'Apri il link', ?)`, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	settled := func() bool {
		return e.count(`SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'SENT'`) == 20 &&
			e.count(`SELECT count(*) FROM notifications WHERE channel = 'webhook' AND status = 'SENT'`) == 19 &&
			e.count(`SELECT count(*) FROM mail_outbox WHERE message_id IS NULL AND sent_at IS NOT NULL`) == 1
	}
	deadline := time.Now().Add(5 * time.Second)
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !settled() || hanging.Load() != 1 {
		t.Fatalf("while one push hangs (%d hanging): e-mail SENT %d/20, other pushes SENT %d/19, validation mail sent %d/1, SMTP received %d",
			hanging.Load(),
			e.count(`SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'SENT'`),
			e.count(`SELECT count(*) FROM notifications WHERE channel = 'webhook' AND status = 'SENT'`),
			e.count(`SELECT count(*) FROM mail_outbox WHERE message_id IS NULL AND sent_at IS NOT NULL`), len(mail.received()))
	}
	if got := e.notices(ids[0])["webhook"]; got != "THROTTLED" {
		t.Fatalf("the hanging push: %s, want THROTTLED until it answers", got)
	}
}

// blockingMailer accepts every mail but waits for release on the one to
// the address block.
type blockingMailer struct {
	block   string
	release chan struct{}
	waiting atomic.Int32
}

func (m *blockingMailer) Send(ctx context.Context, mail channels.Mail) error {
	if mail.To == m.block {
		m.waiting.Add(1)
		select {
		case <-m.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// A queued mail is recorded sent as soon as the mailer took it, not after
// the rest of its batch: a crash while a later mail is on its way must not
// send it again.
func TestQueuedMailRecordedAsItGoes(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	m := &blockingMailer{block: "b@example.it", release: make(chan struct{})}
	d.SetMailer(m)
	for _, to := range []string{"a@example.it", "b@example.it"} {
		if _, err := e.db.W.ExecContext(e.ctx, `INSERT INTO mail_outbox (to_addr, subject, body, created_at) VALUES (?, 'Conferma', 'Apri il link', ?)`,
			to, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan int, 1)
	go func() { n, _ := d.SendQueuedMail(e.ctx); done <- n }()
	for m.waiting.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	sentA := e.count(`SELECT count(*) FROM mail_outbox WHERE to_addr = 'a@example.it' AND sent_at IS NOT NULL`)
	close(m.release)
	if n := <-done; n != 2 {
		t.Fatalf("sent %d, want 2", n)
	}
	if sentA != 1 {
		t.Fatal("the first mail was not recorded sent while the second was still on its way")
	}
}

// The last retry is made at the end of the time to live, and the notice
// that still fails then expires with that failure as its last error.
// Before, the notifier reached the try scheduled at expiry and expired the
// notice without making it, clearing last_error. A notice reached far
// later than its end (the process was down) expires untried and keeps the
// error of its previous try.
func TestLastRetryAtTheEndOfTheTimeToLive(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	d := e.delivery(Config{PushURL: srv.URL, PushSecret: []byte("k"), RetryBase: 20 * time.Minute, RetryMax: time.Hour})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "RRRRRR00A00A000R"
	p := deliverytest.DefaultProfile(fc)
	p.EmailEnabled = false
	e.profile(p)
	start := e.clock.Now()
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, TTL: 3600})
	e.drain(d)
	type row struct {
		Status   string `db:"status"`
		Attempts int    `db:"attempts"`
		LastErr  string `db:"last_error"`
	}
	read := func() row {
		var r row
		if err := e.db.R.Get(&r, `SELECT status, attempts, last_error FROM notifications WHERE message_id = ? AND channel = 'webhook'`, id); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Tries at 0 and 20 min; the next would be at 60 min, the end.
	for _, at := range []time.Duration{0, 20 * time.Minute, 40 * time.Minute, 60 * time.Minute} {
		e.clock.Set(start.Add(at))
		if _, err := d.SendDueNotices(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r := read(); r.Status != "EXPIRED" || r.Attempts != 3 || calls.Load() != 3 || !strings.Contains(r.LastErr, "502") {
		t.Fatalf("after the end of the time to live: %+v with %d calls, want EXPIRED after 3 tries (0, 20, 60 min) and the 502 kept", r, calls.Load())
	}

	// Due at 20 min but reached only a day later: not tried, error kept.
	late := e.send(deliverytest.Message{Service: svc, FiscalCode: fc, TTL: 3600, CreatedAt: start})
	e.drain(d)
	if _, err := e.db.W.ExecContext(e.ctx, `UPDATE notifications SET attempts = 1, last_error = 'push: status 502', next_attempt_at = ?
		WHERE message_id = ?`, start.Add(20*time.Minute), late); err != nil {
		t.Fatal(err)
	}
	id = late
	e.clock.Set(start.Add(24 * time.Hour))
	before := calls.Load()
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if r := read(); r.Status != "EXPIRED" || r.Attempts != 1 || r.LastErr != "push: status 502" || calls.Load() != before {
		t.Fatalf("reached a day late: %+v with %d new calls, want EXPIRED untried with its last error", r, calls.Load()-before)
	}
}

// Queued mails never share a Message-ID, even when an earlier row was
// deleted (account deletion, retention): the id came from the row id,
// which SQLite handed out again, and a mailbox may drop the second mail
// as a duplicate of the first.
func TestQueuedMailMessageIDsAreNotReused(t *testing.T) {
	e := newEnv(t)
	mail := startSMTP(t)
	d := e.delivery(Config{SMTPURL: mail.url})
	for range 2 {
		if _, err := e.db.W.ExecContext(e.ctx, `INSERT INTO mail_outbox (to_addr, subject, body, created_at)
			VALUES ('anna@example.it', 'Conferma il tuo indirizzo e-mail', 'Apri il link', ?)`, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if n, err := d.SendQueuedMail(e.ctx); err != nil || n != 1 {
			t.Fatalf("sent %d, %v", n, err)
		}
		if _, err := e.db.W.ExecContext(e.ctx, `DELETE FROM mail_outbox`); err != nil {
			t.Fatal(err)
		}
	}
	got := mail.received()
	if len(got) != 2 {
		t.Fatalf("received %d mails", len(got))
	}
	ids := map[string]bool{}
	for _, m := range got {
		i := strings.Index(m.data, "Message-ID: <")
		if i < 0 {
			t.Fatalf("no Message-ID:\n%s", m.data)
		}
		id, _, _ := strings.Cut(m.data[i:], "\r\n")
		ids[id] = true
	}
	if len(ids) != 2 {
		t.Fatalf("both mails went out with %v", ids)
	}
}
