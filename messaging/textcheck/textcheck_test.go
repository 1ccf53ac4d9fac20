package textcheck

import "testing"

func TestBadCharacter(t *testing.T) {
	for _, c := range []struct {
		in       string
		newlines bool
		bad      rune
	}{
		{"Comune di Forlì — Tributi «TARI»", false, 0},
		{"riga uno\nriga due\tcon tab", true, 0},
		{"riga uno\nriga due", false, '\n'},
		{"tab\tin un nome", false, '\t'},
		{"Comune \u202eOIDUAR\u202c", false, 0x202e},
		{"isolato \u2066x\u2069", false, 0x2066},
		{"campanello \x07", true, 0x07},
		{"NUL \x00", true, 0},
		{"DEL \x7f", true, 0x7f},
		{"C1 \u0085", true, 0x85},
		{"rotto \ufffd", true, 0xfffd},
		{"byte non UTF-8 \xff", true, 0xfffd},
	} {
		r, bad := BadCharacter(c.in, c.newlines)
		if want := c.bad != 0 || c.in == "NUL \x00"; bad != want || r != c.bad {
			t.Errorf("BadCharacter(%q, %v) = %U, %v; want %U, %v", c.in, c.newlines, r, bad, c.bad, want)
		}
	}
}
