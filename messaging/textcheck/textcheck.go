// Package textcheck finds characters that text meant for people must not
// carry. The message API and the portal's forms share it: a service or
// institution name reaches citizens' inboxes, the admin console and the
// audit log as surely as a message's subject does.
package textcheck

import "unicode/utf8"

// BadCharacter finds the first character such text must not carry:
// control characters (a terminal escape, a NUL; tabs and newlines only
// where lines belong, newlines true), the text-direction overrides and
// isolates that can make a text read other than it is (U+202A–U+202E,
// U+2066–U+2069), and U+FFFD, which is what a broken encoding or a lone
// surrogate escape (\ud800) leaves behind.
func BadCharacter(s string, newlines bool) (rune, bool) {
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			if !newlines {
				return r, true
			}
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return r, true
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return r, true
		case r == utf8.RuneError:
			return r, true
		}
	}
	return 0, false
}
