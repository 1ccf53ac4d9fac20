package servicecard_test

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"sportello/messaging/citizen"
	"sportello/portal/servicecard"
)

// FuzzParseEuro: whatever staff type, an accepted amount is never
// negative and reads back to the same cents from its Italian formatting.
func FuzzParseEuro(f *testing.F) {
	for _, s := range []string{"1.234,56", "1234,5", "1234.56", "12", "3.000", "12,345", "€ 1 000,00", "0,01", ",5", "1.", "9999999999", "99999999999", "1.2.3", "-5", "1e3", "١٢"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := servicecard.ParseEuro(s)
		if err != nil {
			return
		}
		if c < 0 {
			t.Fatalf("%q read as %d cents", s, c)
		}
		back, err := servicecard.ParseEuro(servicecard.FormatEuro(c))
		if err != nil || back != c {
			t.Fatalf("%q → %d cents → %q → %d, %v", s, c, servicecard.FormatEuro(c), back, err)
		}
	})
}

var (
	tagRe  = regexp.MustCompile(`<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)([^>]*)>`)
	attrRe = regexp.MustCompile(`([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s"'=<>` + "`" + `]+))?`)
)

// allowedTags is everything CommonMark with linkify, strikethrough and
// tables renders; anything else in the output came from the input.
var allowedTags = map[string]bool{"p": true, "a": true, "em": true, "strong": true, "code": true, "pre": true, "ul": true, "ol": true,
	"li": true, "blockquote": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "hr": true, "br": true,
	"del": true, "table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true}

// checkSafeHTML fails when rendered Markdown holds a tag or attribute a
// sender could script with, an image (neither renderer lets anything load
// from elsewhere), or a link to a dangerous scheme,
// read the way a browser does (entities decoded, tabs and newlines
// dropped, leading spaces and controls trimmed, case ignored).
func checkSafeHTML(t *testing.T, src, out string) {
	t.Helper()
	for _, m := range tagRe.FindAllStringSubmatch(out, -1) {
		name := strings.ToLower(m[1])
		if !allowedTags[name] {
			t.Fatalf("tag <%s> in the output of %q:\n%s", name, src, out)
		}
		for _, a := range attrRe.FindAllStringSubmatch(m[2], -1) {
			attr := strings.ToLower(a[1])
			val := html.UnescapeString(strings.Trim(a[2], `"'`))
			switch attr {
			case "href", "src":
				u := strings.Map(func(r rune) rune {
					if r == '\t' || r == '\n' || r == '\r' {
						return -1
					}
					return r
				}, val)
				u = strings.ToLower(strings.TrimLeft(u, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "))
				for _, bad := range []string{"javascript:", "vbscript:", "data:", "file:"} {
					if strings.HasPrefix(u, bad) {
						t.Fatalf("%s=%q in the output of %q:\n%s", attr, val, src, out)
					}
				}
			case "title", "alt", "start", "class", "align":
			case "style":
				if !regexp.MustCompile(`^text-align:\s*(left|right|center);?$`).MatchString(val) {
					t.Fatalf("style=%q in the output of %q", val, src)
				}
			default:
				t.Fatalf("attribute %s=%q in the output of %q:\n%s", attr, val, src, out)
			}
		}
	}
}

// FuzzRenderMarkdown checks both renderers that put senders' Markdown in
// a page: the service card's (portal) and the message's (citizen app and
// the portal's sandbox). No sender input may come out as script.
func FuzzRenderMarkdown(f *testing.F) {
	for _, s := range []string{
		"**Gentile cittadino**, la rata scade il [16 dicembre](https://comune.example.it/tari).",
		"<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))",
		"[x](java\tscript:alert(1))", "[x](&#106;avascript:alert(1))", "[x](&#x6A;avascript&colon;alert(1))",
		"![p](https://tracker.example/p.png)", "![p](javascript:alert(1))", "![p](data:image/png;base64,AAAA)", "<a href=\"javascript:alert(1)\">x</a>",
		"[x]( javascript:alert(1))", "[x](<javascript:alert(1)>)", "<javascript:alert(1)>", "www.example.it/\"onmouseover=alert(1)",
		"| a | b |\n|:-|-:|\n| 1 | 2 |", "```js\" onload=\"x\nalert(1)\n```", "[x](data:text/html;base64,PHNjcmlwdD4=)",
		"<div style=\"x\">y</div>", "~~barrato~~", "<!-- c -->", "[x][r]\n\n[r]: javascript:alert(1)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkSafeHTML(t, src, string(servicecard.RenderMarkdown(src)))
		checkSafeHTML(t, src, string(citizen.RenderMarkdown(src)))
	})
}
