// Package static holds the portal's CSS, JavaScript and images, embedded in
// the binary and served under a content hash so browsers cache them forever.
package static

import "embed"

// FS holds every static file.
//
//go:embed css js img
var FS embed.FS
