// Package servicecard is the service card ("scheda servizio") and its
// privacy assessment checklist: the data model, validation and the rules
// that decide whether a service may be submitted for review. It knows
// nothing about HTTP or SQL, so every rule is unit-tested here.
//
// Validation returns i18n keys (with arguments) per field; the portal
// translates them and shows each next to its field.
package servicecard

import (
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"sportello/messaging/fiscalcode"
	"sportello/messaging/textcheck"
)

// Card is what citizens see about a service. JSON names follow IO's
// service metadata so the card can be handed to IO-compatible clients.
type Card struct {
	Name                  string `json:"name"`
	DepartmentName        string `json:"department_name"`
	Description           string `json:"description"` // Markdown
	Scope                 string `json:"scope"`       // NATIONAL | LOCAL
	Topic                 string `json:"topic"`
	WebURL                string `json:"web_url,omitempty"`
	AppIOS                string `json:"app_ios,omitempty"`
	AppAndroid            string `json:"app_android,omitempty"`
	TosURL                string `json:"tos_url,omitempty"`
	PrivacyURL            string `json:"privacy_url,omitempty"`
	Address               string `json:"address,omitempty"`
	Phone                 string `json:"phone,omitempty"`
	Email                 string `json:"email,omitempty"`
	PEC                   string `json:"pec,omitempty"`
	SupportURL            string `json:"support_url,omitempty"`
	CTA                   string `json:"cta,omitempty"`
	RequireSecureChannels bool   `json:"require_secure_channels"`
	MaxPaymentCents       int64  `json:"max_payment_cents"`
}

// Topics are the categories a citizen browses services by.
var Topics = []string{"general", "taxes", "payments", "health", "education", "mobility", "environment", "social", "civil_registry", "culture", "work", "housing"}

// Fields lists the card's fields in form order; the diff on the review page
// and the error summary follow it.
var Fields = []string{"name", "department_name", "description", "scope", "topic", "web_url", "app_ios", "app_android",
	"tos_url", "privacy_url", "address", "phone", "email", "pec", "support_url", "cta", "require_secure_channels", "max_payment"}

// Value returns a field's value as text (for the diff and forms).
func (c *Card) Value(field string) string {
	switch field {
	case "name":
		return c.Name
	case "department_name":
		return c.DepartmentName
	case "description":
		return c.Description
	case "scope":
		return c.Scope
	case "topic":
		return c.Topic
	case "web_url":
		return c.WebURL
	case "app_ios":
		return c.AppIOS
	case "app_android":
		return c.AppAndroid
	case "tos_url":
		return c.TosURL
	case "privacy_url":
		return c.PrivacyURL
	case "address":
		return c.Address
	case "phone":
		return c.Phone
	case "email":
		return c.Email
	case "pec":
		return c.PEC
	case "support_url":
		return c.SupportURL
	case "cta":
		return c.CTA
	case "require_secure_channels":
		if c.RequireSecureChannels {
			return "true"
		}
		return ""
	case "max_payment":
		if c.MaxPaymentCents == 0 {
			return ""
		}
		return FormatEuro(c.MaxPaymentCents)
	}
	return ""
}

// Problem is one field's validation error: an i18n key and its arguments.
type Problem struct {
	Key  string
	Args []any
}

// Problems maps field name → problem.
type Problems map[string]Problem

func (p Problems) add(field, key string, args ...any) {
	if _, ok := p[field]; !ok {
		p[field] = Problem{Key: key, Args: args}
	}
}

// Limits of the card's texts.
const (
	MaxName        = 80
	MaxDescription = 10000
	MaxShort       = 200
	MaxCTA         = 2000
	// MaxPaymentCents is IO's upper bound for a payment notice amount.
	MaxPaymentCents = 9999999999
)

var phoneRE = regexp.MustCompile(`^\+?[0-9][0-9 .\-/]{4,19}$`)

// Parse builds a card from form values (already trimmed), validating every
// field. It returns the card even when some fields are invalid, so the form
// can be shown again with what was typed.
func Parse(get func(string) string) (Card, Problems) {
	p := Problems{}
	c := Card{
		Name: get("name"), DepartmentName: get("department_name"), Description: strings.ReplaceAll(get("description"), "\r\n", "\n"),
		Scope: get("scope"), Topic: get("topic"),
		WebURL: get("web_url"), AppIOS: get("app_ios"), AppAndroid: get("app_android"), TosURL: get("tos_url"),
		PrivacyURL: get("privacy_url"), Address: get("address"), Phone: get("phone"), Email: strings.ToLower(get("email")),
		PEC: strings.ToLower(get("pec")), SupportURL: get("support_url"), CTA: get("cta"),
		RequireSecureChannels: get("require_secure_channels") != "",
	}
	// Characters no reader should get, first: the card reaches citizens,
	// the review page and the audit log, where a text-direction override
	// makes a name read other than it is.
	for field, v := range map[string]string{"name": c.Name, "department_name": c.DepartmentName, "description": c.Description,
		"web_url": c.WebURL, "app_ios": c.AppIOS, "app_android": c.AppAndroid, "tos_url": c.TosURL, "privacy_url": c.PrivacyURL,
		"address": c.Address, "phone": c.Phone, "email": c.Email, "pec": c.PEC, "support_url": c.SupportURL, "cta": c.CTA} {
		if r, bad := textcheck.BadCharacter(v, field == "description"); bad {
			p.add(field, "card.err.characters", fmt.Sprintf("U+%04X", r))
		}
	}
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		p.add("name", "card.err.required")
	case n < 3:
		p.add("name", "card.err.name_short")
	case n > MaxName:
		p.add("name", "card.err.too_long", MaxName)
	}
	if utf8.RuneCountInString(c.DepartmentName) > MaxShort {
		p.add("department_name", "card.err.too_long", MaxShort)
	}
	if utf8.RuneCountInString(c.Description) > MaxDescription {
		p.add("description", "card.err.too_long", MaxDescription)
	}
	if c.Scope != "NATIONAL" && c.Scope != "LOCAL" {
		p.add("scope", "card.err.scope")
	}
	if c.Topic != "" && !contains(Topics, c.Topic) {
		p.add("topic", "card.err.topic")
	}
	for field, v := range map[string]string{"web_url": c.WebURL, "app_ios": c.AppIOS, "app_android": c.AppAndroid,
		"tos_url": c.TosURL, "privacy_url": c.PrivacyURL, "support_url": c.SupportURL} {
		if v != "" && !ValidURL(v) {
			p.add(field, "card.err.url")
		}
	}
	if utf8.RuneCountInString(c.Address) > MaxShort {
		p.add("address", "card.err.too_long", MaxShort)
	}
	if c.Phone != "" && !phoneRE.MatchString(c.Phone) {
		p.add("phone", "card.err.phone")
	}
	if c.Email != "" && !ValidEmail(c.Email) {
		p.add("email", "card.err.email")
	}
	if c.PEC != "" && !ValidEmail(c.PEC) {
		p.add("pec", "card.err.email")
	}
	if utf8.RuneCountInString(c.CTA) > MaxCTA {
		p.add("cta", "card.err.too_long", MaxCTA)
	}
	if v := get("max_payment"); v != "" {
		cents, err := ParseEuro(v)
		switch {
		case err != nil:
			p.add("max_payment", "card.err.euro")
		case cents > MaxPaymentCents:
			p.add("max_payment", "card.err.euro_max", FormatEuro(MaxPaymentCents))
		default:
			c.MaxPaymentCents = cents
		}
	}
	return c, p
}

// ValidURL accepts absolute http(s) URLs with a host.
func ValidURL(s string) bool {
	u, err := url.Parse(s)
	// No user:password@ part: a public card must not carry credentials.
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && !strings.ContainsAny(s, " <>\"")
}

// ValidEmail accepts a bare address with a dotted domain.
func ValidEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || strings.ContainsAny(s, " <>") {
		return false
	}
	_, domain, _ := strings.Cut(s, "@")
	return strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}

// ParseEuro reads an amount as Italian staff type it: "1.234,56",
// "1234,5", "1234.56" or "12" (euro), returning cents. Ambiguous input is
// refused rather than guessed: "12,345" could be twelve euro or twelve
// thousand, so a comma followed by three digits is an error (a dot followed
// by three is the Italian thousands separator), and
// thousands groups must have exactly three digits.
func ParseEuro(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "€"))
	s = strings.ReplaceAll(s, " ", "")
	if s == "" {
		return 0, fmt.Errorf("empty amount")
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' && r != ',' {
			return 0, fmt.Errorf("not a number: %q", s)
		}
	}
	intPart, frac, thousands := s, "", ""
	dots, commas := strings.Count(s, "."), strings.Count(s, ",")
	switch {
	case dots > 0 && commas > 0:
		dec := s[strings.LastIndexAny(s, ".,")]
		if strings.Count(s, string(dec)) != 1 {
			return 0, fmt.Errorf("mixed separators: %q", s)
		}
		i := strings.LastIndexByte(s, dec)
		intPart, frac = s[:i], s[i+1:]
		thousands = map[byte]string{'.': ",", ',': "."}[dec]
	case dots+commas == 1:
		i := strings.IndexAny(s, ".,")
		switch n := len(s) - i - 1; {
		case n == 1 || n == 2:
			intPart, frac = s[:i], s[i+1:]
		case n == 3 && s[i] == '.':
			thousands = "." // "3.000": the Italian way to write three thousand
		default:
			return 0, fmt.Errorf("ambiguous amount: %q", s)
		}
	case dots > 1 || commas > 1:
		thousands = map[bool]string{true: ".", false: ","}[dots > 1]
	}
	if thousands != "" {
		groups := strings.Split(intPart, thousands)
		if len(groups[0]) < 1 || len(groups[0]) > 3 {
			return 0, fmt.Errorf("bad grouping: %q", s)
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, fmt.Errorf("bad grouping: %q", s)
			}
		}
		intPart = strings.Join(groups, "")
	}
	if strings.ContainsAny(intPart, ".,") || len(frac) > 2 || (frac == "" && strings.ContainsAny(s[len(s)-1:], ".,")) {
		return 0, fmt.Errorf("bad amount: %q", s)
	}
	if intPart == "" {
		intPart = "0"
	}
	if len(intPart) > 10 {
		return 0, fmt.Errorf("amount too large")
	}
	euros, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, err
	}
	for len(frac) < 2 {
		frac += "0"
	}
	cents, _ := strconv.ParseInt(frac, 10, 64)
	return euros*100 + cents, nil
}

// FormatEuro writes cents the Italian way: 1.234,56.
func FormatEuro(cents int64) string {
	e, c := cents/100, cents%100
	s := strconv.FormatInt(e, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("%s,%02d", b.String(), c)
}

// ParseRecipients reads authorized test fiscal codes, one per line (or
// separated by commas/spaces), validating each including its check
// character. It returns the normalized list and the bad entries.
func ParseRecipients(s string) (codes []string, bad []string) {
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		cf := fiscalcode.Normalize(f)
		if cf == "" || seen[cf] {
			continue
		}
		seen[cf] = true
		if !fiscalcode.ValidPerson(cf) {
			bad = append(bad, cf)
			continue
		}
		codes = append(codes, cf)
	}
	return codes, bad
}

// ParseCIDRs reads IPv4/IPv6 networks (a bare address means that one host).
func ParseCIDRs(s string) (cidrs []string, bad []string) {
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		var pfx netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			pfx, err = netip.ParsePrefix(f)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			bad = append(bad, f)
			continue
		}
		c := pfx.Masked().String()
		if !seen[c] {
			seen[c] = true
			cidrs = append(cidrs, c)
		}
	}
	return cidrs, bad
}

// Missing lists what a card lacks before it can be submitted (i18n keys).
func (c *Card) Missing() []string {
	var m []string
	if strings.TrimSpace(c.Description) == "" {
		m = append(m, "missing.description")
	}
	if c.PrivacyURL == "" {
		m = append(m, "missing.privacy_url")
	}
	if c.Email == "" && c.PEC == "" && c.Phone == "" && c.SupportURL == "" {
		m = append(m, "missing.contact")
	}
	if c.DepartmentName == "" {
		m = append(m, "missing.department")
	}
	if c.Scope == "" {
		m = append(m, "missing.scope")
	}
	return m
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
