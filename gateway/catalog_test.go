package gateway_test

import (
	"os"
	"strings"
	"testing"

	"sportello/gateway"
	"sportello/templates/i18n"
)

// Every problem and rule has its texts in both languages, and the OpenAPI
// document names every rule, so docs and answers cannot drift apart.
func TestProblemsAndRulesAreDocumented(t *testing.T) {
	c := i18n.MustLoad()
	for _, lang := range i18n.Languages {
		for _, code := range gateway.ProblemCodes {
			for _, part := range []string{"title", "detail"} {
				if k := "gateway.problem." + code + "." + part; !c.Has(lang, k) {
					t.Errorf("%s: missing %s", lang, k)
				}
			}
		}
		for _, r := range gateway.Rules {
			if k := "gateway.rule." + r; !c.Has(lang, k) {
				t.Errorf("%s: missing %s", lang, k)
			}
		}
	}
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range gateway.Rules {
		if !strings.Contains(string(b), r) {
			t.Errorf("openapi.yaml does not name rule %s", r)
		}
	}
	if string(b) != string(gateway.OpenAPI) {
		t.Fatal("embedded document differs from the file")
	}
}
