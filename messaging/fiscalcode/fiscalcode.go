// Package fiscalcode validates Italian fiscal codes: a person's 16-character
// codice fiscale (including its check character, with omocodia substitutions)
// and an organisation's 11-digit code (the partita IVA algorithm).
package fiscalcode

import (
	"regexp"
	"strings"
)

// personPattern is IO's FiscalCode pattern.
var personPattern = regexp.MustCompile(`^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$`)

// Sandbox is IO's default sandbox recipient, always allowed for test keys.
// It does not carry a valid check character; it is accepted by name.
const Sandbox = "AAAAAA00A00A000A"

// sandboxPattern is IO's pattern of the fake fiscal codes it gives
// integrators for their tests. Their last letter is always X, not a check
// character; no real code matches (no birthplace code starts with Y).
var sandboxPattern = regexp.MustCompile(`^[A-Z]{6}[0-9]{2}A[0-9]{2}Y[0-9]{3}X$`)

// Normalize upper-cases and trims a fiscal code as typed by a person.
func Normalize(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// Problem says what is wrong with a person fiscal code: "" when valid,
// "format" when it does not match the pattern, "check" when the check
// character is wrong. The sandbox code and IO's sandbox codes are valid.
func Problem(cf string) string {
	if !personPattern.MatchString(cf) {
		return "format" // the sandbox codes match it too
	}
	// Only a code whose check character is wrong can be a sandbox code:
	// a real one, on every send, pays for no second pattern.
	if CheckChar(cf[:15]) != cf[15] && cf != Sandbox && !sandboxPattern.MatchString(cf) {
		return "check"
	}
	return ""
}

// ValidPerson reports whether cf is a well-formed person fiscal code with the
// right check character (or a sandbox code).
func ValidPerson(cf string) bool { return Problem(cf) == "" }

var oddValues = map[byte]int{
	'0': 1, '1': 0, '2': 5, '3': 7, '4': 9, '5': 13, '6': 15, '7': 17, '8': 19, '9': 21,
	'A': 1, 'B': 0, 'C': 5, 'D': 7, 'E': 9, 'F': 13, 'G': 15, 'H': 17, 'I': 19, 'J': 21,
	'K': 2, 'L': 4, 'M': 18, 'N': 20, 'O': 11, 'P': 3, 'Q': 6, 'R': 8, 'S': 12, 'T': 14,
	'U': 16, 'V': 10, 'W': 22, 'X': 25, 'Y': 24, 'Z': 23,
}

// CheckChar computes the check character of the first 15 characters.
func CheckChar(first15 string) byte {
	sum := 0
	for i := 0; i < 15; i++ {
		c := first15[i]
		if i%2 == 0 { // positions 1,3,5... (1-based) are "odd"
			sum += oddValues[c]
		} else if c >= '0' && c <= '9' {
			sum += int(c - '0')
		} else {
			sum += int(c - 'A')
		}
	}
	return byte('A' + sum%26)
}

// ValidOrganization reports whether s is 11 digits with a correct check digit.
func ValidOrganization(s string) bool {
	if len(s) != 11 {
		return false
	}
	sum := 0
	for i := 0; i < 11; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// MaskIn masks every fiscal code (in any letter case) inside s, a URL
// path for example, for a log line.
func MaskIn(s string) string {
	return anywherePattern.ReplaceAllStringFunc(s, Mask)
}

var anywherePattern = regexp.MustCompile(`(?i)[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]`)

// Mask hides all but the first three and last character of a fiscal code,
// for logs and places where the full code must not appear.
func Mask(cf string) string {
	if len(cf) < 5 {
		return "****"
	}
	return cf[:3] + strings.Repeat("*", len(cf)-4) + cf[len(cf)-1:]
}
