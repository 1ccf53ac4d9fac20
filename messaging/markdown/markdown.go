// Package markdown makes senders' Markdown (message bodies, service card
// descriptions) safe to show: on top of goldmark's safe mode, which drops
// raw HTML, its transformer keeps only links a citizen can follow and lets
// nothing load from elsewhere when the text is opened.
package markdown

import (
	"net/url"
	"strings"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
)

// Images says what becomes of an image: none is ever shown. A remote
// image would be fetched when the text is opened — a read receipt for the
// sender, a tracking pixel — and the pages' CSP would block it anyway,
// leaving a broken picture.
type Images int

const (
	// ImagesAsText shows an image's alt text.
	ImagesAsText Images = iota
	// ImagesAsLinks turns an http(s) image into a link to it, named by its
	// alt text (or its address), so the reader can choose to open it; other
	// images, and images already inside a link (which cannot hold another),
	// become their alt text.
	ImagesAsLinks
)

// Safe returns the AST transformer for goldmark's parser: images as told,
// and links (written or linkified) to anything but the given schemes
// turned into their text. http and https links need a host, others (mailto,
// tel) an address. goldmark's own check is not enough: it lets
// data:image/… through as a link target (found by FuzzRenderMarkdown).
func Safe(images Images, schemes ...string) parser.ASTTransformer {
	s := safe{images: images, schemes: map[string]bool{}}
	for _, sc := range schemes {
		s.schemes[sc] = true
	}
	return s
}

type safe struct {
	images  Images
	schemes map[string]bool
}

func (s safe) Transform(doc *ast.Document, reader text.Reader, _ parser.Context) {
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
			if !s.followable(string(l.Destination)) {
				unwrap = append(unwrap, n)
			}
		case *ast.AutoLink:
			if l.AutoLinkType != ast.AutoLinkEmail && !s.followable(string(l.URL(src))) {
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
		if s.images != ImagesAsLinks || !web(string(img.Destination)) || insideLink(img) {
			unwrapNode(img)
			continue
		}
		link := ast.NewLink()
		link.Destination, link.Title = img.Destination, img.Title
		for c := img.FirstChild(); c != nil; c = img.FirstChild() {
			link.AppendChild(link, c) // moves c out of img
		}
		if !link.HasChildren() {
			link.AppendChild(link, ast.NewString(img.Destination))
		}
		parent.ReplaceChild(parent, img, link)
	}
}

// followable is a link target of an allowed scheme with an address.
func (s safe) followable(dest string) bool {
	u, err := url.Parse(strings.TrimSpace(dest))
	if err != nil {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case !s.schemes[scheme]:
		return false
	case scheme == "http" || scheme == "https":
		return u.Host != ""
	}
	return u.Opaque != ""
}

func web(dest string) bool {
	u, err := url.Parse(strings.TrimSpace(dest))
	if err != nil {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return (s == "http" || s == "https") && u.Host != ""
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

func insideLink(n ast.Node) bool {
	for p := n.Parent(); p != nil; p = p.Parent() {
		if p.Kind() == ast.KindLink || p.Kind() == ast.KindAutoLink {
			return true
		}
	}
	return false
}
