package citizen

import (
	"bytes"
	"html/template"
	"net/url"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// md renders message Markdown for citizens. goldmark without WithUnsafe
// drops raw HTML, so a sender cannot put script in a citizen's page. On
// top, safeMessage turns images into links (nothing in a message loads
// from elsewhere when it is opened) and keeps only links a citizen can
// follow safely: http(s), mailto: and tel:.
var md = goldmark.New(
	goldmark.WithExtensions(extension.Linkify, extension.Strikethrough, extension.Table),
	goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(safeMessage{}, 1000))),
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

// safeMessage replaces every image with a link to it, named by its alt
// text (or its address when it has none). A remote image in a message
// would be fetched when the citizen opens it — a read receipt for the
// sender, a tracking pixel — and the citizen pages' CSP would block it
// anyway, leaving a broken picture; the HTML also goes to app backends
// through the API, where no CSP may apply. A link lets the citizen choose.
// Images that are not http(s), and images already inside a link (which
// cannot hold another), become their alt text. Links to anything but
// http(s), mailto: and tel: become their text: goldmark's own check lets
// data:image/… through as a link target (found by FuzzRenderMarkdown).
type safeMessage struct{}

func (safeMessage) Transform(doc *ast.Document, reader text.Reader, _ parser.Context) {
	src := reader.Source()
	var images, unwrap []ast.Node
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch l := n.(type) {
		case *ast.Image:
			images = append(images, n)
		case *ast.Link:
			if !followable(string(l.Destination)) {
				unwrap = append(unwrap, n)
			}
		case *ast.AutoLink:
			if l.AutoLinkType != ast.AutoLinkEmail && !followable(string(l.URL(src))) {
				unwrap = append(unwrap, n)
			}
		}
		return ast.WalkContinue, nil
	})
	for _, n := range unwrap {
		if al, ok := n.(*ast.AutoLink); ok {
			if parent := n.Parent(); parent != nil {
				parent.ReplaceChild(parent, n, ast.NewString(al.Label(src)))
			}
			continue
		}
		unwrapNode(n)
	}
	for _, n := range images {
		img := n.(*ast.Image)
		parent := img.Parent()
		if parent == nil {
			continue
		}
		if !webAddress(string(img.Destination)) || insideLink(img) {
			unwrapNode(img)
			continue
		}
		link := ast.NewLink()
		link.Destination, link.Title = img.Destination, img.Title
		for c := img.FirstChild(); c != nil; c = img.FirstChild() {
			link.AppendChild(link, c)
		}
		if !link.HasChildren() {
			link.AppendChild(link, ast.NewString(img.Destination))
		}
		parent.ReplaceChild(parent, img, link)
	}
}

// unwrapNode replaces n with its children.
func unwrapNode(n ast.Node) {
	parent := n.Parent()
	if parent == nil {
		return
	}
	for c := n.FirstChild(); c != nil; c = n.FirstChild() {
		parent.InsertBefore(parent, n, c) // moves c out of n
	}
	parent.RemoveChild(parent, n)
}

func webAddress(dest string) bool {
	u, err := url.Parse(strings.TrimSpace(dest))
	if err != nil {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return (s == "http" || s == "https") && u.Host != ""
}

// followable is a link target a citizen can open safely from a message.
func followable(dest string) bool {
	if webAddress(dest) {
		return true
	}
	u, err := url.Parse(strings.TrimSpace(dest))
	if err != nil {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return (s == "mailto" || s == "tel") && u.Opaque != ""
}

func insideLink(n ast.Node) bool {
	for p := n.Parent(); p != nil; p = p.Parent() {
		if p.Kind() == ast.KindLink || p.Kind() == ast.KindAutoLink {
			return true
		}
	}
	return false
}
