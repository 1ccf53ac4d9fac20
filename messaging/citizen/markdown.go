package citizen

import (
	"bytes"
	"html/template"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/util"

	"sportello/messaging/markdown"
)

// md renders message Markdown for citizens. goldmark without WithUnsafe
// drops raw HTML, so a sender cannot put script in a citizen's page; the
// safe transformer turns images into links (the HTML also goes to app
// backends through the API, where no CSP may apply) and keeps only links a
// citizen can follow: http(s), mailto:, tel:.
var md = goldmark.New(
	goldmark.WithExtensions(extension.Linkify, extension.Strikethrough, extension.Table),
	goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(
		markdown.Safe(markdown.ImagesAsLinks, "http", "https", "mailto", "tel"), 1000))),
)

// RenderMarkdown returns the sanitized HTML of a message body; the portal's
// sandbox uses it too, so services see exactly what citizens see.
func RenderMarkdown(src string) template.HTML {
	var b bytes.Buffer
	if err := md.Convert([]byte(src), &b); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(b.String()) //nolint:gosec // goldmark in safe mode, see md
}
