package i18n

import (
	"strings"
	"testing"
)

// TestCatalogComplete fails when a string exists in one language and not the
// other, or a catalog file is malformed.
func TestCatalogComplete(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Check() {
		t.Error(p)
	}
	if len(c.msgs["it"]) == 0 {
		t.Fatal("empty Italian catalog")
	}
}

func TestNegotiate(t *testing.T) {
	cases := map[string]string{
		"":                        "it",
		"en-GB,en;q=0.9":          "en",
		"it-IT,it;q=0.9,en;q=0.8": "it",
		"de-DE,en;q=0.5":          "en",
		"fr":                      "it",
		"en;q=0.2, it;q=0.9":      "it",
		"EN-us":                   "en",
	}
	for in, want := range cases {
		if got := Negotiate(in); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTFallback(t *testing.T) {
	c := &Catalog{msgs: map[string]map[string]string{"it": {"a": "ciao %s"}, "en": {}}}
	if got := c.T("en", "a", "x"); got != "ciao x" {
		t.Errorf("fallback to Italian: got %q", got)
	}
	if got := c.T("en", "missing"); got != "missing" {
		t.Errorf("missing key: got %q", got)
	}
}

func TestTPlural(t *testing.T) {
	c := MustLoad()
	cases := []struct {
		lang, key string
		args      []any
		want      string
	}{
		{"it", "dashboard.members_count", []any{1}, "1 persona nell'ente"},
		{"it", "dashboard.members_count", []any{3}, "3 persone nell'ente"},
		{"it", "keys.quota.used", []any{1, 1000}, "1 richiesta usata su 1000."},
		{"it", "keys.quota.used", []any{0, 1000}, "0 richieste usate su 1000."},
		{"en", "review.waited.days", []any{1}, "1 day"},
		{"en", "review.waited.days", []any{2}, "2 days"},
		{"en", "keys.chart.desc", []any{int64(1), int64(1)}, "Bar chart: 1 request in 30 days, at most 1 in one day. Each day's figures are in the table below."},
	}
	for _, tc := range cases {
		if got := c.T(tc.lang, tc.key, tc.args...); got != tc.want {
			t.Errorf("T(%s, %s, %v) = %q, want %q", tc.lang, tc.key, tc.args, got, tc.want)
		}
	}
}

// The Italian interface speaks to one person ("tu"), as most pages do;
// e-mails to an institution (review.mail.*) may address it as "voi".
func TestItalianUsesTu(t *testing.T) {
	c := MustLoad()
	voi := []string{"potete", "avete", "vostr", "scrivete", "copiate", "copiatel", "conservatel", "perdete", "rigeneratel", "tenete", "aprite", "inviate il", "ricevete", "riceverete", "ripetete"}
	for k, v := range c.msgs["it"] {
		if strings.HasPrefix(k, "review.mail.") {
			continue
		}
		low := strings.ToLower(v)
		for _, w := range voi {
			if strings.Contains(low, w) {
				t.Errorf("%s uses %q (voi): %s", k, w, v)
			}
		}
	}
}
