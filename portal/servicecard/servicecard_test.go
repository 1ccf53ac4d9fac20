package servicecard

import (
	"strings"
	"testing"
)

func form(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseValidatesEveryField(t *testing.T) {
	good := []string{"name", "Tributi", "scope", "LOCAL", "department_name", "Ufficio tributi"}
	cases := []struct {
		field, value, key string
	}{
		{"name", "", "card.err.required"},
		{"name", "Ab", "card.err.name_short"},
		{"name", strings.Repeat("x", 81), "card.err.too_long"},
		{"scope", "GALACTIC", "card.err.scope"},
		{"topic", "nope", "card.err.topic"},
		{"web_url", "javascript:alert(1)", "card.err.url"},
		{"privacy_url", "ftp://x.it/p", "card.err.url"},
		{"support_url", "www.comune.it", "card.err.url"},
		{"tos_url", "https://user:pw@comune.example.it/tos", "card.err.url"},
		{"phone", "chiamaci", "card.err.phone"},
		{"email", "a@b", "card.err.email"},
		{"pec", "not an email", "card.err.email"},
		{"max_payment", "dieci euro", "card.err.euro"},
		{"max_payment", "100.000.000,00", "card.err.euro_max"},
	}
	for _, tc := range cases {
		kv := append([]string{}, good...)
		kv = append(kv, tc.field, tc.value)
		_, p := Parse(form(kv...))
		if p[tc.field].Key != tc.key {
			t.Errorf("%s=%q: got %+v, want %s", tc.field, tc.value, p[tc.field], tc.key)
		}
	}
	c, p := Parse(form(append(good, "max_payment", "1.234,56", "web_url", "https://www.comune.example.it", "email", "Tributi@Comune.example.it")...))
	if len(p) != 0 || c.MaxPaymentCents != 123456 || c.Email != "tributi@comune.example.it" {
		t.Fatalf("valid card refused: %+v %+v", p, c)
	}
}

func TestEuro(t *testing.T) {
	for in, want := range map[string]int64{"12": 1200, "12,5": 1250, "1.234,56": 123456, "1234.56": 123456, "€ 1.000,00": 100000, "1.000.000": 100000000, "1,234.50": 123450, "0,01": 1, "3.000": 300000} {
		got, err := ParseEuro(in)
		if err != nil || got != want {
			t.Errorf("ParseEuro(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "1,2,3x", "-5", "0,001", "1.2.3", "12,345", "1.234.56", "1,234.5,6", "12,"} {
		if _, err := ParseEuro(bad); err == nil {
			t.Errorf("ParseEuro(%q) accepted", bad)
		}
	}
	if FormatEuro(123456789) != "1.234.567,89" || FormatEuro(5) != "0,05" {
		t.Error("FormatEuro")
	}
}

func TestRecipientsAndCIDRs(t *testing.T) {
	codes, bad := ParseRecipients("rssmra85t10a562s\nRSSMRA85T10A562X, AAAAAA00A00A000A\nnonvalido")
	if len(codes) != 2 || codes[0] != "RSSMRA85T10A562S" || len(bad) != 2 {
		t.Fatalf("codes %v bad %v", codes, bad)
	}
	cidrs, bad := ParseCIDRs("10.0.0.0/8 192.168.1.7\n2001:db8::/32, 300.1.1.1")
	if len(cidrs) != 3 || cidrs[1] != "192.168.1.7/32" || len(bad) != 1 {
		t.Fatalf("cidrs %v bad %v", cidrs, bad)
	}
}

func TestMissingBeforeSubmission(t *testing.T) {
	c := Card{Name: "X", Scope: "LOCAL", DepartmentName: "D"}
	if m := c.Missing(); len(m) != 3 {
		t.Fatalf("missing %v", m)
	}
	c.Description, c.PrivacyURL, c.SupportURL = "Descrizione", "https://x.it/privacy", "https://x.it/aiuto"
	if m := c.Missing(); len(m) != 0 {
		t.Fatalf("complete card still missing %v", m)
	}
}

func TestChecklistRules(t *testing.T) {
	def, _ := ItemByID("legal_basis")
	if p := ValidateItem(def, ItemState{State: Done}, nil); p["f_basis"].Key == "" || p["f_mandate"].Key == "" {
		t.Fatalf("done without fields accepted: %v", p)
	}
	if p := ValidateItem(def, ItemState{State: NotApplicable, Justification: "non serve davvero"}, nil); p["state"].Key != "checklist.na_not_allowed" {
		t.Fatalf("legal basis n/a accepted: %v", p)
	}
	min, _ := ItemByID("minimisation")
	if p := ValidateItem(min, ItemState{State: NotApplicable}, nil); p["justification"].Key == "" {
		t.Fatal("n/a without justification accepted")
	}
	if p := ValidateItem(min, ItemState{State: NotApplicable, Justification: "il servizio invia solo avvisi generici"}, nil); len(p) != 0 {
		t.Fatalf("justified n/a refused: %v", p)
	}
	pn, _ := ItemByID("privacy_notice")
	if p := ValidateItem(pn, ItemState{State: Done}, &Card{}); p["state"].Key != "checklist.privacy_url_first" {
		t.Fatal("privacy notice done without privacy URL")
	}
	dpia, _ := ItemByID("dpia")
	if p := ValidateItem(dpia, ItemState{State: Done, Fields: map[string]string{"outcome": "done"}, Evidence: "fatta"}, nil); p["evidence"].Key == "" {
		t.Fatal("DPIA done without link accepted")
	}
	cl := Checklist{"data_categories": {State: Done, Fields: map[string]string{"categories": "contact,special"}}}
	if !cl.ForcesSecure() {
		t.Fatal("special categories must force secure channels")
	}
	if a, total := cl.Progress(); a != 1 || total != 9 || len(cl.Pending()) != 8 {
		t.Fatalf("progress %d/%d", a, total)
	}
}

func TestMarkdownIsSafe(t *testing.T) {
	out := string(RenderMarkdown("**ciao** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)> ![pixel](https://tracker.example.com/p.gif) [ftp](ftp://x.example.it/f) [rel](/admin) [ok](https://www.comune.example.it) [scrivi](mailto:urp@comune.example.it) https://auto.example.it"))
	for _, bad := range []string{"<script", "javascript:", "<img", "ftp://", `href="/admin"`, "tracker.example.com"} {
		if strings.Contains(out, bad) {
			t.Errorf("unsafe markdown output contains %q: %s", bad, out)
		}
	}
	for _, good := range []string{"<strong>ciao</strong>", `href="https://www.comune.example.it"`, `href="mailto:urp@comune.example.it"`, `href="https://auto.example.it"`, "pixel ftp rel"} {
		if !strings.Contains(out, good) {
			t.Errorf("markdown output lacks %q: %s", good, out)
		}
	}
	if false {
		t.Fatalf("unsafe markdown output: %s", out)
	}
}
