package markdown

import (
	"bytes"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/util"
)

// render is src through goldmark with Linkify and the Safe transformer.
func render(t *testing.T, images Images, src string, schemes ...string) string {
	t.Helper()
	md := goldmark.New(goldmark.WithExtensions(extension.Linkify),
		goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(Safe(images, schemes...), 1000))))
	var b bytes.Buffer
	if err := md.Convert([]byte(src), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var messageSchemes = []string{"http", "https", "mailto", "tel"}

// No image in a message loads from elsewhere when it is opened: a remote
// one becomes a link named by its alt text, anything else its alt text.
func TestImagesBecomeLinks(t *testing.T) {
	for src, want := range map[string]string{
		`![Mappa *zona* rossa](https://comune.example.it/mappa.png "Mappa")`:      `<a href="https://comune.example.it/mappa.png" title="Mappa">Mappa <em>zona</em> rossa</a>`,
		`![](https://comune.example.it/a.png)`:                                    `<a href="https://comune.example.it/a.png">https://comune.example.it/a.png</a>`,
		`![pixel](data:image/png;base64,AAAA)`:                                    `<p>pixel</p>`,
		`![x](javascript:alert(1))`:                                               `<p>x</p>`,
		`[![stemma](https://comune.example.it/s.png)](https://comune.example.it)`: `<a href="https://comune.example.it">stemma</a>`,
		`vedi ![a ![b](https://x.example/b.png)](https://x.example/a.png) qui`:    `vedi <a href="https://x.example/a.png">a b</a> qui`,
	} {
		out := render(t, ImagesAsLinks, src, messageSchemes...)
		if !strings.Contains(out, want) || strings.Contains(out, "<img") {
			t.Errorf("%s:\n got %s\nwant %s, and no <img>", src, out, want)
		}
	}
}

// Only links a citizen can follow safely stay links: http(s), mailto:,
// tel:. Anything else keeps its text.
func TestOnlyFollowableLinks(t *testing.T) {
	for src, want := range map[string]string{
		`[paga](https://pagopa.comune.example.it/avviso)`: `<a href="https://pagopa.comune.example.it/avviso">paga</a>`,
		`[scrivi](mailto:urp@comune.example.it)`:          `<a href="mailto:urp@comune.example.it">scrivi</a>`,
		`[chiama](tel:+39051123456)`:                      `<a href="tel:+39051123456">chiama</a>`,
		`https://www.comune.example.it/tari`:              `<a href="https://www.comune.example.it/tari">https://www.comune.example.it/tari</a>`,
		`[x](dAtA:imAge/png;)`:                            `<p>x</p>`,
		`[x](javascript:alert(1))`:                        `<p>x</p>`,
		`[area riservata](/admin)`:                        `<p>area riservata</p>`,
		`[file](ftp://files.example.it/a)`:                `<p>file</p>`,
	} {
		if out := render(t, ImagesAsLinks, src, messageSchemes...); !strings.Contains(out, want) {
			t.Errorf("%s:\n got %s\nwant %s", src, out, want)
		}
	}
}

// ImagesAsText keeps only the alt text, and a scheme left out of the list
// (tel: here) is not a link.
func TestImagesAsTextAndSchemeList(t *testing.T) {
	out := render(t, ImagesAsText, "![stemma](https://comune.example.it/s.png) [chiama](tel:+39051123456) [sito](https://comune.example.it)", "http", "https", "mailto")
	for _, want := range []string{"stemma", "chiama", `<a href="https://comune.example.it">sito</a>`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q: %s", want, out)
		}
	}
	if strings.Contains(out, "<img") || strings.Contains(out, "s.png") || strings.Contains(out, "tel:") {
		t.Errorf("image or tel: link kept: %s", out)
	}
}
