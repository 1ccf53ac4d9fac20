package portal

import (
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"

	"sportello/messaging/textcheck"
)

// Form carries submitted values and per-field error messages (already
// translated) back to the page, so errors show next to their fields.
type Form struct {
	Values url.Values
	Errors map[string]string
}

func newForm(r *http.Request) *Form {
	_ = r.ParseForm()
	return &Form{Values: r.PostForm, Errors: map[string]string{}}
}

func emptyForm() *Form { return &Form{Values: url.Values{}, Errors: map[string]string{}} }

// Get returns a trimmed value.
func (f *Form) Get(field string) string { return strings.TrimSpace(f.Values.Get(field)) }

// Raw returns a value untrimmed (passwords).
func (f *Form) Raw(field string) string { return f.Values.Get(field) }

// Error returns the message of a field ("" when valid).
func (f *Form) Error(field string) string {
	if f == nil {
		return ""
	}
	return f.Errors[field]
}

// Value returns a field's submitted value for re-display.
func (f *Form) Value(field string) string {
	if f == nil {
		return ""
	}
	return f.Values.Get(field)
}

// Fail records the first error of a field.
func (f *Form) Fail(field, msg string) {
	if _, ok := f.Errors[field]; !ok {
		f.Errors[field] = msg
	}
}

// Valid reports whether no field failed.
func (f *Form) Valid() bool { return len(f.Errors) == 0 }

// ErrorList returns errors in field order, for the summary at the top of a
// form (screen readers and keyboard users jump from there to the field).
func (f *Form) ErrorList(order ...string) []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	for _, k := range order {
		if m, ok := f.Errors[k]; ok {
			out = append(out, FieldError{k, m})
			seen[k] = true
		}
	}
	for k, m := range f.Errors {
		if !seen[k] {
			out = append(out, FieldError{k, m})
		}
	}
	return out
}

// FieldError is one entry of a form's error summary.
type FieldError struct{ Field, Message string }

// validEmail accepts a plain address (no display name) with a dotted domain.
func validEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " <>") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	_, domain, _ := strings.Cut(s, "@")
	return strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// refuseBadCharacters fails each field whose text carries a character no
// reader should get (textcheck.BadCharacter: control characters,
// text-direction overrides, U+FFFD). Names typed here reach the admin
// console, the audit log, mails and citizens' apps. Call it before the
// other checks of those fields, so its message is the one shown.
func (a *App) refuseBadCharacters(r *http.Request, f *Form, fields ...string) {
	for _, field := range fields {
		if c, bad := textcheck.BadCharacter(f.Get(field), false); bad {
			f.Fail(field, a.T(r, "field.characters", fmt.Sprintf("U+%04X", c)))
		}
	}
}
