package channels

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Mail is one plain-text e-mail.
type Mail struct {
	To        string
	Subject   string
	Body      string
	MessageID string // stable per notice, so a retried send is recognisable as a duplicate
}

// Mailer sends one e-mail.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// SMTP sends mail through a server given as smtp://user:pass@host:port
// (STARTTLS when offered) or smtps://… (TLS from the first byte). The
// sender address comes from ?from=, else From.
type SMTP struct {
	addr     string
	host     string
	implicit bool
	user     string
	pass     string
	From     string
	Timeout  time.Duration
	// TLSConfig overrides the client TLS settings (tests with self-signed servers).
	TLSConfig *tls.Config
}

// ParseSMTPURL validates an SMTP URL. The password is kept only in memory.
func ParseSMTPURL(raw, defaultFrom string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("smtp url: %w", err)
	}
	s := &SMTP{From: defaultFrom, Timeout: 20 * time.Second}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.implicit = true
	default:
		return nil, fmt.Errorf("smtp url: scheme %q, want smtp or smtps", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, fmt.Errorf("smtp url: missing host")
	}
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "25", true: "465"}[s.implicit]
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	if f := u.Query().Get("from"); f != "" {
		s.From = f
	}
	if s.From == "" {
		s.From = "sportello@" + s.host
	}
	return s, nil
}

// Send delivers m. A 5xx reply is permanent; network errors and 4xx replies
// are temporary.
func (s *SMTP) Send(ctx context.Context, m Mail) error {
	deadline := time.Now().Add(s.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	tlsCfg := s.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	}
	if s.implicit {
		conn, err = tls.DialWithDialer(dialer, "tcp", s.addr, tlsCfg)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return smtpErr("hello", err)
	}
	defer c.Close()
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return smtpErr("starttls", err)
			}
		}
	}
	if s.user != "" {
		// net/smtp refuses PLAIN over an unencrypted link except to
		// localhost, which is the safe behaviour for a password.
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return smtpErr("auth", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return smtpErr("mail from", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return smtpErr("rcpt to", err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("data", err)
	}
	if _, err := w.Write(Compose(s.From, m)); err != nil {
		return smtpErr("data", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("data", err)
	}
	return c.Quit()
}

// smtpErr marks 5xx replies permanent.
func smtpErr(stage string, err error) error {
	msg := err.Error()
	if len(msg) >= 3 && msg[0] == '5' {
		return fmt.Errorf("smtp %s: %w: %w", stage, ErrPermanent, err)
	}
	return fmt.Errorf("smtp %s: %w", stage, err)
}

// Compose builds the RFC 5322 message: UTF-8 text, quoted-printable, the
// subject encoded for non-ASCII characters.
func Compose(from string, m Mail) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", m.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", time.Now().UTC().Format(time.RFC1123Z))
	if m.MessageID != "" {
		hdr("Message-ID", "<"+m.MessageID+">")
	}
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}
