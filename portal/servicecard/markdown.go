package servicecard

import (
	"bytes"
	"html/template"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// md renders CommonMark without raw HTML (goldmark escapes it unless
// WithUnsafe is set, and drops javascript: and other dangerous link
// destinations), so a card's description cannot inject markup.
var md = goldmark.New(goldmark.WithExtensions(extension.Linkify), goldmark.WithRendererOptions(html.WithHardWraps()))

// RenderMarkdown returns safe HTML for a description.
func RenderMarkdown(src string) template.HTML {
	var b bytes.Buffer
	if err := md.Convert([]byte(src), &b); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(b.String()) // #nosec: goldmark escapes raw HTML (no WithUnsafe)
}
