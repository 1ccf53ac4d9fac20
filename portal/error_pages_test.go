package portal

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sportello/templates/i18n"
)

// Every error page the portal renders has its title and its text in
// every language: renderError looks up KEY.title and KEY.body, and a
// missing one shows the reader the bare key as the page's heading (two
// keys pages did, "keys.error.not_approved.title").
func TestEveryErrorPageHasItsWords(t *testing.T) {
	cat := i18n.MustLoad()
	call := regexp.MustCompile(`renderError\(w, r, [^,]+, "([a-z_.]+)"\)`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			found++
			for _, lang := range i18n.Languages {
				for _, part := range []string{".title", ".body"} {
					if !cat.Has(lang, m[1]+part) {
						t.Errorf("%s: error page %s has no %s in %s", f, m[1], m[1]+part, lang)
					}
				}
			}
		}
	}
	if found < 5 {
		t.Fatalf("found %d renderError calls: the pattern no longer matches the code", found)
	}
}
