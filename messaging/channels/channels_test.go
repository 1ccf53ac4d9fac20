package channels

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseSMTPURL(t *testing.T) {
	s, err := ParseSMTPURL("smtp://user:p%40ss@mail.example.it:2525?from=noreply@example.it", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "mail.example.it:2525" || s.user != "user" || s.pass != "p@ss" || s.From != "noreply@example.it" || s.implicit {
		t.Fatalf("parsed %+v", s)
	}
	s, err = ParseSMTPURL("smtps://mail.example.it", "sportello@example.it")
	if err != nil || s.addr != "mail.example.it:465" || !s.implicit || s.From != "sportello@example.it" {
		t.Fatalf("smtps default port / from: %+v %v", s, err)
	}
	for _, bad := range []string{"http://mail.example.it", "smtp://", "::"} {
		if _, err := ParseSMTPURL(bad, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"message_id":"x"}`)
	sig := Sign([]byte("k"), 1700000000, body)
	if !strings.HasPrefix(sig, "sha256=") || !Verify([]byte("k"), 1700000000, body, sig) {
		t.Fatal("own signature refused")
	}
	if Verify([]byte("k"), 1700000001, body, sig) || Verify([]byte("other"), 1700000000, body, sig) ||
		Verify([]byte("k"), 1700000000, []byte(`{"message_id":"y"}`), sig) {
		t.Fatal("signature accepted for another timestamp, key or body")
	}
}

func TestComposeEncodesSubjectAndBody(t *testing.T) {
	b := string(Compose("a@example.it", Mail{To: "b@example.it", Subject: "Novità dal Comune", Body: "Città: è così\n", MessageID: "m1@sportello"}))
	if !strings.Contains(b, "Subject: =?utf-8?q?Novit=C3=A0_dal_Comune?=") || !strings.Contains(b, "Message-ID: <m1@sportello>") ||
		!strings.Contains(b, "Citt=C3=A0") {
		t.Fatalf("composed:\n%s", b)
	}
}

// A redirect from the webhook is a failure, not a delivery: the client does
// not follow it (Go's default turns a 301 into a body-less GET, whose 200
// was recorded as sent), with or without a caller's own client.
func TestPushDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			followed.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	for name, client := range map[string]*http.Client{"default client": nil, "caller's client": {}} {
		p := &Push{URL: srv.URL + "/push", Secret: []byte("k"), Client: client}
		err := p.Send(context.Background(), "m1", []byte(`{}`))
		if err == nil || !Permanent(err) || !strings.Contains(err.Error(), "301") {
			t.Errorf("%s: Send after a 301 = %v, want a permanent failure naming the status", name, err)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}
