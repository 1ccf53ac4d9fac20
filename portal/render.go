package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"sportello/messaging/citizen"
	"sportello/portal/servicecard"
	"sportello/static"
	"sportello/templates"
	"sportello/templates/i18n"
)

// renderer holds one parsed template set per language and page, built at
// start: a broken template fails the start, not a request.
type renderer struct {
	catalog *i18n.Catalog
	sets    map[string]map[string]*template.Template // lang → page → template
	assets  map[string]string                        // static path → content hash
}

func newRenderer(c *i18n.Catalog) (*renderer, error) {
	r := &renderer{catalog: c, sets: map[string]map[string]*template.Template{}, assets: map[string]string{}}
	if err := fs.WalkDir(static.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.FS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		r.assets[p] = hex.EncodeToString(sum[:6])
		return nil
	}); err != nil {
		return nil, err
	}
	pages, err := fs.Glob(templates.FS, "*.html")
	if err != nil {
		return nil, err
	}
	for _, lang := range i18n.Languages {
		base, err := template.New("").Funcs(r.funcs(lang)).ParseFS(templates.FS, "layout.html", "partials/*.html")
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		r.sets[lang] = map[string]*template.Template{}
		for _, p := range pages {
			if p == "layout.html" {
				continue
			}
			t, err := template.Must(base.Clone()).ParseFS(templates.FS, p)
			if err != nil {
				return nil, fmt.Errorf("templates: %s: %w", p, err)
			}
			// partial runs a template chosen at run time (feature panels on
			// the dashboard); html/template has escaped it like any other.
			t.Funcs(template.FuncMap{"partial": func(name string, data any) (template.HTML, error) {
				var b bytes.Buffer
				err := t.ExecuteTemplate(&b, name, data)
				return template.HTML(b.String()), err
			}})
			r.sets[lang][strings.TrimSuffix(p, ".html")] = t
		}
	}
	return r, nil
}

// asset returns the cache-busting URL of a static file.
func (r *renderer) asset(p string) string {
	h, ok := r.assets[p]
	if !ok {
		return "/static/missing/" + p
	}
	return "/static/" + h + "/" + p
}

var rome = mustLoadLocation("Europe/Rome")

func mustLoadLocation(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}

// dateLayout is how a date reads in a language.
func dateLayout(lang string) string {
	if lang == "en" {
		return "2 Jan 2006"
	}
	return "02/01/2006"
}

func (r *renderer) funcs(lang string) template.FuncMap {
	return template.FuncMap{
		"t":     func(key string, args ...any) string { return r.catalog.T(lang, key, args...) },
		"asset": r.asset,
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"list": func(v ...any) []any { return v },
		// when formats a time in Rome's zone, the way Italian offices read
		// it (03/12/2026 14:05); English pages get an unambiguous day and
		// month (3 Dec 2026 14:05), as 03/12 reads as 12 March to many.
		"when": func(t any) string {
			var tt time.Time
			switch v := t.(type) {
			case time.Time:
				tt = v
			case *time.Time:
				if v == nil {
					return ""
				}
				tt = *v
			default:
				return ""
			}
			if tt.IsZero() {
				return ""
			}
			return tt.In(rome).Format(dateLayout(lang) + " 15:04")
		},
		// day is the date alone, in Rome's zone (Monday 00:00 in Rome is
		// still Sunday in UTC).
		"day":        func(t time.Time) string { return t.In(rome).Format(dateLayout(lang)) },
		"isoTime":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"due":        func(s string) string { return citizen.DueDate(lang, s) }, // a message's due_date, as the citizen app shows it
		"add":        func(a, b int) int { return a + b },
		"pathEscape": url.PathEscape,
		"join":       strings.Join,
		"lower":      strings.ToLower,
		"field":      fieldFunc(r.catalog, lang),
		"markdown":   servicecard.RenderMarkdown,
		"partial":    func(string, any) (template.HTML, error) { return "", nil }, // replaced per page

	}
}

// Page is the data every page template receives.
type Page struct {
	Lang     string
	Title    string
	Path     string // request path, for the language switch and "next" links
	Viewer   *Viewer
	Inst     *Institution // the institution in the URL, on /i/ pages
	Role     string       // the viewer's role in Inst ("admin", "operator", "" for platform admins)
	Insts    []Membership // the viewer's institutions, for the switcher
	Flashes  []Flash
	Form     *Form
	Data     any
	can      func(obj, act string) bool
	Section  string // highlights the current navigation entry
	Platform bool   // admin console page
}

// Can reports whether the viewer may perform act on obj in the current
// institution; templates use it to hide what would be refused anyway.
func (p *Page) Can(obj, act string) bool {
	if p.can == nil {
		return false
	}
	return p.can(obj, act)
}

// T translates in the page's language (for use in Go code building pages).
func (a *App) T(r *http.Request, key string, args ...any) string {
	return a.Catalog.T(langOf(r), key, args...)
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, p *Page) {
	if p == nil {
		p = &Page{}
	}
	a.fillPage(w, r, p)
	set := a.pages.sets[p.Lang]
	t, ok := set[name]
	if !ok {
		a.serverError(w, r, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		a.serverError(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fillPage sets the fields every page has from the request.
func (a *App) fillPage(w http.ResponseWriter, r *http.Request, p *Page) {
	p.Lang = langOf(r)
	// The page's own address, query included and still escaped: the
	// language switch comes back to it (a decoded "%" or "?" would not).
	p.Path = r.URL.RequestURI()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// A page shown in answer to a form (one refused, with its errors)
		// has the form's address, which often answers only POST (a limit,
		// an invitation): the switch goes back to the page the form was
		// on. Referrer-Policy is same-origin, so a browser sends it.
		if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && strings.HasPrefix(ref.Path, "/") {
			p.Path = ref.RequestURI()
		}
	}
	if v := viewerOf(r); v != nil {
		p.Viewer = v
		if p.Insts == nil {
			p.Insts, _ = a.membershipsOf(r.Context(), v.User.ID)
		}
	}
	if ic := instCtxOf(r); ic != nil {
		p.Inst, p.Role = ic.Inst, ic.Role
		if p.Viewer != nil {
			uid, dom := p.Viewer.User.ID, instDomain(ic.Inst.ID)
			p.can = func(obj, act string) bool { return a.Enforcer.Allowed(uid, dom, obj, act) }
		}
	}
	p.Flashes = a.popFlashes(w, r)
}

// staticHandler serves embedded files. A request whose hash matches the
// current content may be cached forever.
func (a *App) staticHandler() http.Handler {
	files := http.FileServerFS(static.FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/static/")
		hash, file, ok := strings.Cut(rest, "/")
		if !ok || strings.HasSuffix(file, "/") || file == "" {
			http.NotFound(w, r)
			return
		}
		file = path.Clean("/" + file)[1:]
		if a.pages.assets[file] == hash {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + file
		files.ServeHTTP(w, r2)
	})
}
