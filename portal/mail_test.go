package portal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"sportello/messaging/channels"
)

// A real SMTP server on loopback that keeps what it receives.
type smtpInbox struct {
	mu   sync.Mutex
	msgs []string
}

func (b *smtpInbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct {
	b  *smtpInbox
	to string
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, "To-Envelope: "+s.to+"\n"+string(b))
	s.b.mu.Unlock()
	return err
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func TestInvitationIsMailedWhenSMTPConfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inbox := &smtpInbox{}
	srv := smtp.NewServer(inbox)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	mailer, err := channels.ParseSMTPURL("smtp://"+ln.Addr().String(), "sportello@example.it")
	if err != nil {
		t.Fatal(err)
	}

	e := newTestEnv(t)
	e.App.Mailer = mailer
	admin, inst := e.registerInst(1, "a@comune.example.it")
	r := admin.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {"nuovo@comune.example.it"}, "role": {"operator"}})
	mustContain(t, r, "Abbiamo inviato il link anche per email")
	var got string
	for i := 0; i < 100 && got == ""; i++ {
		inbox.mu.Lock()
		if len(inbox.msgs) > 0 {
			got = inbox.msgs[0]
		}
		inbox.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(got, "nuovo@comune.example.it") || !strings.Contains(got, "http://sportello.test/invite/") || !strings.Contains(got, "Comune di Prova 1") {
		t.Fatalf("mail not received or incomplete:\n%s", got)
	}
	// The token travels only in the mail and the page: the database keeps its hash.
	var n int
	_ = e.DB.R.Get(&n, `SELECT count(*) FROM mail_outbox`)
	if n != 0 {
		t.Fatal("invitation link stored in the mail outbox")
	}
}

// panicMailer panics on Send, like a mail library meeting an odd reply.
type panicMailer struct{}

func (panicMailer) Send(context.Context, channels.Mail) error { panic("odd server reply") }

// logLines is a log sink that hands every line to the test.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default: // the test stopped listening: drop
	}
	return len(p), nil
}

// A mailer that panics in the background send is logged, and the
// process (here the test binary) goes on: no handler's recovery covers
// that goroutine.
func TestPanickingMailerIsLoggedNotFatal(t *testing.T) {
	e := newTestEnv(t)
	lines := make(logLines, 100)
	e.App.Mailer = panicMailer{}
	e.App.Logger = slog.New(slog.NewTextHandler(lines, nil))
	admin, inst := e.registerInst(1, "a@comune.example.it")
	r := admin.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {"nuovo@comune.example.it"}, "role": {"operator"}})
	mustContain(t, r, "/invite/")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, "invitation mail not sent") && strings.Contains(l, "odd server reply") {
				return
			}
		case <-deadline:
			t.Fatal("no log line for the panicking mailer")
		}
	}
}
