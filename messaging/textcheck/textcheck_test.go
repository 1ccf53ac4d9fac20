package textcheck

import "testing"

func TestBadCharacter(t *testing.T) {
	for _, c := range []struct {
		in       string
		newlines bool
		bad      rune // the character reported (NUL is 0 too)
		want     bool
	}{
		{"Comune di Forlì — Tributi «TARI»", false, 0, false},
		{"riga uno\nriga due\tcon tab", true, 0, false},
		{"riga uno\nriga due", false, '\n', true},
		{"tab\tin un nome", false, '\t', true},
		{"Comune \u202eOIDUAR\u202c", false, 0x202e, true},
		{"isolato \u2066x\u2069", false, 0x2066, true},
		{"campanello \x07", true, 0x07, true},
		{"NUL \x00", true, 0, true},
		{"DEL \x7f", true, 0x7f, true},
		{"C1 \u0085", true, 0x85, true},
		{"rotto \ufffd", true, 0xfffd, true},
		{"byte non UTF-8 \xff", true, 0xfffd, true},
	} {
		r, bad := BadCharacter(c.in, c.newlines)
		if bad != c.want || r != c.bad {
			t.Errorf("BadCharacter(%q, %v) = %U, %v; want %U, %v", c.in, c.newlines, r, bad, c.bad, c.want)
		}
	}
}
