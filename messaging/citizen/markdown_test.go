package citizen

import (
	"strings"
	"testing"
)

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
		out := string(RenderMarkdown(src))
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
		if out := string(RenderMarkdown(src)); !strings.Contains(out, want) {
			t.Errorf("%s:\n got %s\nwant %s", src, out, want)
		}
	}
}
