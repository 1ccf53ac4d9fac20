package servicecard

import (
	"bytes"
	"html/template"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/util"

	"sportello/messaging/markdown"
)

// md renders CommonMark without raw HTML (goldmark escapes it unless
// WithUnsafe is set). On top, the safe transformer keeps only http(s) and
// mailto links and turns images into their alt text: a card must not load
// anything from elsewhere (no tracking pixels) nor link to odd schemes.
var md = goldmark.New(
	goldmark.WithExtensions(extension.Linkify),
	goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(
		markdown.Safe(markdown.ImagesAsText, "http", "https", "mailto"), 1000))),
	goldmark.WithRendererOptions(html.WithHardWraps()),
)

// RenderMarkdown returns safe HTML for a description.
func RenderMarkdown(src string) template.HTML {
	var b bytes.Buffer
	if err := md.Convert([]byte(src), &b); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(b.String()) // goldmark escapes raw HTML; markdown.Safe vets links
}
