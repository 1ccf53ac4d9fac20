package citizen

import (
	"bytes"
	"html/template"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// md renders message Markdown for citizens. goldmark without WithUnsafe
// drops raw HTML and dangerous link targets (javascript:, vbscript:, data:
// outside images), so a sender cannot put script in a citizen's page.
var md = goldmark.New(goldmark.WithExtensions(extension.Linkify, extension.Strikethrough, extension.Table))

// RenderMarkdown returns the sanitized HTML of a message body; the portal's
// sandbox uses it too, so services see exactly what citizens see.
func RenderMarkdown(src string) template.HTML {
	var b bytes.Buffer
	if err := md.Convert([]byte(src), &b); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(b.String()) //nolint:gosec // goldmark in safe mode, see md
}
