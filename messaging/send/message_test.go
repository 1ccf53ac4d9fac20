package send

import (
	"strings"
	"testing"
)

// The minimum lengths count as IO counts (every character, spaces
// included, in UTF-16 units), so a message IO accepts is accepted here:
// an integrator changes only the base URL. Text with nothing readable in
// it is refused on its own rule.
func TestValidateCountsLengthsAsIO(t *testing.T) {
	words := strings.Repeat("La rata ", 10) // 80 characters, 20 of them spaces
	for _, c := range []struct {
		name, subject, markdown string
		field, rule             string // "" when valid
	}{
		{"80 characters with spaces, as IO accepts", "Scadenza TARI", words, "", ""},
		{"a subject of ten with a space", "TARI 2026!", words, "", ""},
		{"79 characters", "Scadenza TARI", words[:79], "content.markdown", RuleMinLength},
		{"emoji count two, as in JavaScript", "📅📅📅📅📅", words, "", ""},
		{"spaces only", strings.Repeat(" ", 12), words, "content.subject", RuleBlank},
		{"zero-width characters only", strings.Repeat("\u200b", 12), words, "content.subject", RuleBlank},
		{"newlines and spaces only", "Scadenza TARI", strings.Repeat(" \n", 50), "content.markdown", RuleBlank},
	} {
		m := &NewMessage{FiscalCode: "RSSMRA85T10A562S", Content: &MessageContent{Subject: c.subject, Markdown: c.markdown}}
		errs := Validate(m, Limits{MaxPaymentCents: 100})
		switch {
		case c.rule == "" && len(errs) > 0:
			t.Errorf("%s: refused %+v", c.name, errs)
		case c.rule != "" && (len(errs) != 1 || errs[0].Field != c.field || errs[0].Rule != c.rule):
			t.Errorf("%s: got %+v, want %s on %s", c.name, errs, c.rule, c.field)
		}
	}
}
