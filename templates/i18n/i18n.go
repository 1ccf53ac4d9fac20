// Package i18n is Sportello's one translation catalog. Every user-facing
// string, in pages and in API errors, is looked up here by key.
//
// Catalog files are JSON objects of key → text, one file per concern and
// language: "<concern>.<lang>.json" (core.it.json, services.en.json...).
// Italian is the first language; English must have exactly the same keys
// (Check enforces it, and a test runs Check).
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Languages, first is the default.
var Languages = []string{"it", "en"}

// Default is the language used when nothing else is known.
const Default = "it"

// Catalog maps language → key → text.
type Catalog struct {
	msgs map[string]map[string]string
}

// Load reads every embedded catalog file. A key defined twice for the same
// language (in two concern files) is an error.
func Load() (*Catalog, error) {
	c := &Catalog{msgs: map[string]map[string]string{}}
	for _, l := range Languages {
		c.msgs[l] = map[string]string{}
	}
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		parts := strings.Split(strings.TrimSuffix(path.Base(name), ".json"), ".")
		if len(parts) != 2 {
			return nil, fmt.Errorf("i18n: %s: want <concern>.<lang>.json", name)
		}
		lang := parts[1]
		m, ok := c.msgs[lang]
		if !ok {
			return nil, fmt.Errorf("i18n: %s: unknown language %q", name, lang)
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var kv map[string]string
		if err := json.Unmarshal(b, &kv); err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", name, err)
		}
		for k, v := range kv {
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("i18n: %s: key %q defined twice", name, k)
			}
			m[k] = v
		}
	}
	return c, nil
}

// MustLoad is Load for program start, where a broken catalog is a bug.
func MustLoad() *Catalog {
	c, err := Load()
	if err != nil {
		panic(err)
	}
	return c
}

// T returns the text of key in lang, formatted with args (fmt verbs). An
// unknown key falls back to Italian, then to the key itself so a missing
// string is visible rather than blank.
//
// Plurals: when the first argument is the int 1 and "key.one" exists, that
// singular form is used ("1 richiesta", not "1 richieste"). Italian and
// English both use the singular for exactly one.
func (c *Catalog) T(lang, key string, args ...any) string {
	if len(args) > 0 && isOne(args[0]) {
		if s, ok := c.lookup(lang, key+".one"); ok {
			return fmt.Sprintf(s, args...)
		}
	}
	s, ok := c.lookup(lang, key)
	if !ok {
		s = key
	}
	// A message may ignore its arguments (a shared call site passes the
	// minimum length to every password message, for example).
	if len(args) > 0 && strings.Contains(s, "%") {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// isOne reports whether v is an integer equal to 1.
func isOne(v any) bool {
	switch n := v.(type) {
	case int:
		return n == 1
	case int64:
		return n == 1
	case int32:
		return n == 1
	case uint64:
		return n == 1
	}
	return false
}

// lookup finds key in lang, falling back to the default language.
func (c *Catalog) lookup(lang, key string) (string, bool) {
	if s, ok := c.msgs[lang][key]; ok {
		return s, true
	}
	s, ok := c.msgs[Default][key]
	return s, ok
}

// Has reports whether key exists in lang.
func (c *Catalog) Has(lang, key string) bool {
	_, ok := c.msgs[lang][key]
	return ok
}

// Check lists keys present in one language and not in another.
func (c *Catalog) Check() []string {
	var problems []string
	for _, a := range Languages {
		for k := range c.msgs[a] {
			for _, b := range Languages {
				if _, ok := c.msgs[b][k]; !ok {
					problems = append(problems, fmt.Sprintf("%q is in %s but not in %s", k, a, b))
				}
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// Supported returns lang if it is a catalog language, else "".
func Supported(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	for _, l := range Languages {
		if lang == l || strings.HasPrefix(lang, l+"-") || strings.HasPrefix(lang, l+"_") {
			return l
		}
	}
	return ""
}

// Negotiate picks the best catalog language from an Accept-Language header,
// honouring q-values; Italian when nothing matches.
func Negotiate(acceptLanguage string) string {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, q := strings.TrimSpace(part), 1.0
		if i := strings.Index(tag, ";"); i >= 0 {
			var f float64
			if _, err := fmt.Sscanf(strings.TrimSpace(tag[i+1:]), "q=%g", &f); err == nil {
				q = f
			}
			tag = strings.TrimSpace(tag[:i])
		}
		if l := Supported(tag); l != "" && q > bestQ {
			best, bestQ = l, q
		}
	}
	if best == "" {
		return Default
	}
	return best
}
