// Package send is the messaging side of the API send path: IO's NewMessage
// and MessageContent with their validation rules, the durable insert of a
// message with its outbox row, and the reads behind GET message and the
// profile look-up. The gateway authenticates and limits; this package
// decides what a valid message is and how it is stored.
package send

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"sportello/messaging/fiscalcode"
	"sportello/messaging/textcheck"
)

// IO's limits (IO-REFERENCE.md), in one place so docs, errors and checks agree.
const (
	SubjectMin   = 10
	SubjectMax   = 120
	MarkdownMin  = 80
	MarkdownMax  = 10000
	TTLDefault   = 3600
	TTLMin       = 3600
	TTLMax       = 604800
	AmountMin    = 1
	AmountMax    = 9999999999
	FeatureStd   = "STANDARD"
	FeatureAdv   = "ADVANCED"
	NoticeFormat = `^[0123][0-9]{17}$`
)

var noticePattern = regexp.MustCompile(NoticeFormat)

// NewMessage is IO's request body of a send.
type NewMessage struct {
	FiscalCode       string          `json:"fiscal_code,omitempty"`
	TimeToLive       *int64          `json:"time_to_live,omitempty"`
	Content          *MessageContent `json:"content"`
	FeatureLevelType string          `json:"feature_level_type,omitempty"`
}

// MessageContent is what the citizen reads.
type MessageContent struct {
	Subject               string       `json:"subject"`
	Markdown              string       `json:"markdown"`
	DueDate               string       `json:"due_date,omitempty"`
	PaymentData           *PaymentData `json:"payment_data,omitempty"`
	RequireSecureChannels bool         `json:"require_secure_channels,omitempty"`
}

// PaymentData is a pagoPA notice attached to a message; amounts are in
// euro cents.
type PaymentData struct {
	Amount              *int64 `json:"amount"` // nil when missing, so it is "required", not "at least 1"
	NoticeNumber        string `json:"notice_number"`
	InvalidAfterDueDate bool   `json:"invalid_after_due_date,omitempty"`
	Payee               *Payee `json:"payee,omitempty"`
}

// Payee is the organisation the payment goes to, when not the sender.
type Payee struct {
	FiscalCode string `json:"fiscal_code"`
}

// FieldError is one broken rule, in the shape of the problem+json "errors"
// list: the field (JSON path), the rule, the limit and the value that broke
// it, so an integrator never has to guess.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
	Limit any    `json:"limit,omitempty"`
	Value any    `json:"value,omitempty"`
	// Message is filled in by the caller, in the client's language.
	Message string `json:"message"`
}

// Rules, also the suffix of their catalog keys ("gateway.rule.<rule>").
const (
	RuleRequired    = "required"
	RuleMinLength   = "min_length"
	RuleMaxLength   = "max_length"
	RuleMin         = "min"
	RuleMax         = "max"
	RulePattern     = "pattern"
	RuleCheckChar   = "check_character"
	RuleEnum        = "enum"
	RuleDateTime    = "date_time"
	RuleMaxPayment  = "max_payment"
	RuleConflict    = "conflict"
	RuleOrgCode     = "organization_fiscal_code"
	RuleType        = "type"
	RuleSyntax      = "syntax"
	RuleUnknownBody = "body"
	RuleEncoding    = "encoding"
	RuleCharacters  = "characters"
	RuleBlank       = "blank"
)

// Limits is what a service allows beyond IO's fixed rules.
type Limits struct {
	MaxPaymentCents int64
}

// Validate checks m (fiscal code already resolved into m.FiscalCode) against
// IO's rules and returns every broken rule, not just the first. It fills in
// the default time_to_live and feature_level_type.
func Validate(m *NewMessage, lim Limits) []FieldError {
	var errs []FieldError
	add := func(field, rule string, limit, value any) {
		errs = append(errs, FieldError{Field: field, Rule: rule, Limit: limit, Value: value})
	}
	errs = append(errs, CheckFiscalCode("fiscal_code", m.FiscalCode)...)
	if m.TimeToLive == nil {
		ttl := int64(TTLDefault)
		m.TimeToLive = &ttl
	} else if *m.TimeToLive < TTLMin {
		add("time_to_live", RuleMin, TTLMin, *m.TimeToLive)
	} else if *m.TimeToLive > TTLMax {
		add("time_to_live", RuleMax, TTLMax, *m.TimeToLive)
	}
	switch m.FeatureLevelType {
	case "":
		m.FeatureLevelType = FeatureStd
	case FeatureStd, FeatureAdv:
	default:
		add("feature_level_type", RuleEnum, FeatureStd+"|"+FeatureAdv, m.FeatureLevelType)
	}
	c := m.Content
	if c == nil {
		add("content", RuleRequired, nil, nil)
		return errs
	}
	// The minimum counts as IO does, every character as JavaScript counts
	// it (UTF-16 units), so what IO accepts is accepted here; text with
	// nothing a citizen could read (ten spaces, zero-width characters) is
	// refused on its own rule. The maximum counts characters.
	length := func(field, s string, lo, hi int, newlines bool) {
		switch n := utf8.RuneCountInString(s); {
		case s == "":
			add(field, RuleRequired, nil, nil)
		case utf16Length(s) < lo:
			add(field, RuleMinLength, lo, utf16Length(s)) // only on the error path
		case n > hi:
			add(field, RuleMaxLength, hi, n)
		case !hasVisible(s):
			add(field, RuleBlank, nil, nil)
		default:
			if bad, ok := textcheck.BadCharacter(s, newlines); ok {
				add(field, RuleCharacters, nil, fmt.Sprintf("U+%04X", bad))
			}
		}
	}
	length("content.subject", c.Subject, SubjectMin, SubjectMax, false)
	length("content.markdown", c.Markdown, MarkdownMin, MarkdownMax, true)
	if c.DueDate != "" {
		if t, ok := parseDueDate(c.DueDate); ok {
			c.DueDate = t.UTC().Format(time.RFC3339Nano)
		} else {
			add("content.due_date", RuleDateTime, "RFC 3339, e.g. 2026-12-31T23:59:59+01:00", c.DueDate)
		}
	}
	if p := c.PaymentData; p != nil {
		switch {
		case p.Amount == nil:
			add("content.payment_data.amount", RuleRequired, nil, nil)
		case *p.Amount < AmountMin:
			add("content.payment_data.amount", RuleMin, AmountMin, *p.Amount)
		case *p.Amount > AmountMax:
			add("content.payment_data.amount", RuleMax, AmountMax, *p.Amount)
		case *p.Amount > lim.MaxPaymentCents:
			add("content.payment_data.amount", RuleMaxPayment, lim.MaxPaymentCents, *p.Amount)
		}
		if p.NoticeNumber == "" {
			add("content.payment_data.notice_number", RuleRequired, nil, nil)
		} else if !noticePattern.MatchString(p.NoticeNumber) {
			add("content.payment_data.notice_number", RulePattern, NoticeFormat, p.NoticeNumber)
		}
		if p.Payee != nil && !fiscalcode.ValidOrganization(p.Payee.FiscalCode) {
			// Echoed only when it has an organisation code's shape (11
			// digits, a wrong check digit): anything else may be a person's
			// fiscal code typed here by mistake, which must not come back
			// whole in an error body (they end up in logs).
			v := p.Payee.FiscalCode
			if !orgShape.MatchString(v) {
				v = fiscalcode.Mask(v)
			}
			add("content.payment_data.payee.fiscal_code", RuleOrgCode, "11 digits", v)
		}
	}
	return errs
}

var orgShape = regexp.MustCompile(`^[0-9]{11}$`)

// utf16Length is the length of s as JavaScript (and so IO's validation)
// counts it: characters beyond the Basic Multilingual Plane, most emoji,
// count twice.
func utf16Length(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n++
		}
		n++
	}
	return n
}

// hasVisible reports whether s has a character that is neither a space
// nor an invisible format character (zero-width space, joiners, BOM).
func hasVisible(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) && !unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// parseDueDate reads an RFC 3339 date and time. RFC 3339 allows a lower
// case "t" and "z"; it does not allow an offset of 24 hours or more (Go's
// parser does), nor a year past 9999 once in UTC, which could not be
// written back as RFC 3339.
func parseDueDate(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, false
	}
	_, offset := t.Zone()
	if offset <= -24*3600 || offset >= 24*3600 {
		return time.Time{}, false
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// CheckFiscalCode validates a person fiscal code field. The value is echoed
// masked, since error bodies end up in integrators' logs.
func CheckFiscalCode(field, cf string) []FieldError {
	switch fiscalcode.Problem(cf) {
	case "":
		return nil
	case "format":
		if cf == "" {
			return []FieldError{{Field: field, Rule: RuleRequired}}
		}
		return []FieldError{{Field: field, Rule: RulePattern, Limit: "^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$", Value: fiscalcode.Mask(cf)}}
	default:
		return []FieldError{{Field: field, Rule: RuleCheckChar, Value: fiscalcode.Mask(cf)}}
	}
}

// contentJSON is how content is stored: the validated, normalised form.
func contentJSON(c *MessageContent) ([]byte, error) { return json.Marshal(c) }
