package channels

import (
	"strings"
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
