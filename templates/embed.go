// Package templates holds the portal's html/template files, embedded in the
// binary. Each page file defines "title" and "content"; layout.html wraps
// them; partials/ holds pieces shared by pages (form fields, flashes).
package templates

import "embed"

// FS holds every template file.
//
//go:embed *.html partials/*.html citizen/*.html
var FS embed.FS
