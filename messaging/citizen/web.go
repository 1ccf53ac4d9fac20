package citizen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/preferences"
	"sportello/static"
	"sportello/templates"
	"sportello/templates/i18n"
)

// The development web app: a test login that asks only for a fiscal code,
// then a tiny citizen app (preferences, per-service switches, inbox). It
// exists only with Dev, and every page says so.

const cookieName = "sportello_citizen"

var rome = func() *time.Location {
	l, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}()

func (a *API) webRoutes() error {
	assets := map[string]string{}
	if err := fs.WalkDir(static.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.FS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assets[p] = hex.EncodeToString(sum[:6]) // same URL scheme as the portal's static handler
		return nil
	}); err != nil {
		return err
	}
	a.pages = map[string]*template.Template{}
	for _, l := range i18n.Languages {
		funcs := template.FuncMap{
			"t":     func(key string, args ...any) string { return a.cat.T(l, key, args...) },
			"asset": func(p string) string { return "/static/" + assets[p] + "/" + p },
			"when":  func(t time.Time) string { return t.In(rome).Format("02/01/2006 15:04") },
			"due":   func(s string) string { return DueDate(l, s) },
			"euro":  func(cents int64) string { return fmt.Sprintf("%d,%02d", cents/100, cents%100) },
			"num":   func(n int) string { return groupDigits(l, n) },
		}
		t, err := template.New("").Funcs(funcs).ParseFS(templates.FS, "citizen/*.html")
		if err != nil {
			return fmt.Errorf("citizen templates: %w", err)
		}
		a.pages[l] = t
	}
	cop := http.NewCrossOriginProtection()
	web := http.NewServeMux()
	web.HandleFunc("GET /citizen/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/citizen/app", http.StatusSeeOther)
	})
	web.HandleFunc("GET /citizen/login", a.loginPage)
	web.HandleFunc("POST /citizen/login", a.login)
	web.HandleFunc("POST /citizen/logout", a.logout)
	web.HandleFunc("POST /citizen/lang", a.setLanguage)
	p := func(pattern string, f func(w http.ResponseWriter, r *http.Request, fc string)) {
		web.Handle(pattern, a.signedIn(f))
	}
	p("GET /citizen/app", a.appPage)
	p("POST /citizen/app/profile", a.appSaveProfile)
	p("POST /citizen/app/validate-email", a.appValidateEmail)
	p("POST /citizen/app/services/{sid}", a.appToggleService)
	p("GET /citizen/app/messages", a.appInbox)
	p("GET /citizen/app/messages/{id}", a.appMessage)
	p("POST /citizen/app/messages/{id}/status", a.appMessageStatus)
	p("GET /citizen/app/export", a.export)
	p("POST /citizen/app/delete", a.appDelete)
	web.HandleFunc("/citizen/", func(w http.ResponseWriter, r *http.Request) {
		a.page(w, r, http.StatusNotFound, "notfound", webPage{})
	})
	a.mux.Handle("/citizen/", securityHeaders(cop.Handler(web)))
	return nil
}

// securityHeaders matches the portal's CSP: no inline script or style.
// (no-store and nosniff are set for every citizen answer by API.Handler.)
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

const langCookie = "sportello_citizen_lang"

// webLang is the language of the citizen pages: the one chosen with the
// switch, else the browser's.
func webLang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil {
		if l := i18n.Supported(c.Value); l != "" {
			return l
		}
	}
	return lang(r)
}

// setLanguage remembers the chosen language and goes back to the page
// (only local paths: no open redirect).
func (a *API) setLanguage(w http.ResponseWriter, r *http.Request) {
	l := i18n.Supported(r.FormValue("lang"))
	if l == "" {
		l = i18n.Default
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/citizen/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: a.cfg.Secure, SameSite: http.SameSiteLaxMode})
	next := r.FormValue("next")
	if !strings.HasPrefix(next, "/citizen/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		next = "/citizen/app"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// webPage is what every citizen page template receives.
type webPage struct {
	Path       string // the current page (path and query), for the language switch
	Lang       string
	Title      string
	FiscalCode string // masked, for the header
	Notice     string
	Error      string
	Data       any
}

func (a *API) page(w http.ResponseWriter, r *http.Request, status int, name string, p webPage) {
	p.Lang, p.Path = webLang(r), r.URL.Path
	// The language switch comes back to the same search and page, without
	// repeating a one-time notice.
	if q := r.URL.Query(); r.Method == http.MethodGet && len(q) > 0 {
		q.Del("saved")
		if len(q) > 0 {
			p.Path += "?" + q.Encode()
		}
	}
	t := a.pages[p.Lang]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, p); err != nil {
		a.log.Error("citizen page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// signedIn reads the dev token from the cookie; without one, to the login.
func (a *API) signedIn(f func(w http.ResponseWriter, r *http.Request, fc string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err == nil {
			if fc, err := VerifyToken(a.cfg.TokenKey, c.Value, a.now()); err == nil {
				f(w, r, fc)
				return
			}
		}
		http.Redirect(w, r, "/citizen/login", http.StatusSeeOther)
	})
}

func (a *API) loginPage(w http.ResponseWriter, r *http.Request) {
	a.page(w, r, http.StatusOK, "login", webPage{Title: a.cat.T(webLang(r), "citizen.web.login_title")})
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	fc := fiscalcode.Normalize(r.PostFormValue("fiscal_code"))
	if !fiscalcode.ValidPerson(fc) {
		a.page(w, r, http.StatusUnprocessableEntity, "login", webPage{Title: a.cat.T(webLang(r), "citizen.web.login_title"),
			Error: a.cat.T(webLang(r), "citizen.field.fiscal_code"), Data: fc})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: IssueToken(a.cfg.TokenKey, fc, a.now()), Path: "/citizen/",
		HttpOnly: true, Secure: a.cfg.Secure, SameSite: http.SameSiteLaxMode, MaxAge: int(TokenTTL / time.Second)})
	a.log.Info("dev citizen login", "fiscal_code", fiscalcode.Mask(fc))
	http.Redirect(w, r, "/citizen/app", http.StatusSeeOther)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/citizen/", MaxAge: -1, HttpOnly: true, Secure: a.cfg.Secure})
	http.Redirect(w, r, "/citizen/login", http.StatusSeeOther)
}

type serviceToggle struct {
	ID, Name, Org string
	Test          bool // in test mode, writing to the citizen as an authorized test recipient
	Pref          ServicePreference
	Changed       bool // the preference differs from the mode's default
}

func (a *API) appPage(w http.ResponseWriter, r *http.Request, fc string) {
	ctx, l := r.Context(), webLang(r)
	p, err := loadProfile(ctx, a.db.R, fc)
	first := errors.Is(err, db.ErrNotFound)
	if err != nil && !first {
		a.serverError(w, r, err)
		return
	}
	data := map[string]any{"First": first}
	saved := r.URL.Query().Get("saved")
	if !first {
		data["Profile"] = p.api()
		rows, err := a.visibleServiceNames(ctx)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		tests, err := a.testServicesReaching(ctx, fc)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		listed := len(rows)
		rows = append(rows, tests...)
		stored, err := allStoredPreferences(ctx, a.db.R, fc)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		services := make([]listedService, len(rows))
		for i := range rows {
			pref, _ := preferenceFrom(p, &rows[i], stored[rows[i].ID])
			services[i] = listedService{row: &rows[i], name: rows[i].name(), test: i >= listed, pref: pref, changed: changedFromDefault(p.Mode, pref)}
		}
		list := buildServicesList(services, servicesQueryFrom(r.URL.Query()), saved)
		if list.Saved != nil {
			saved = "" // said in the list, beside the switch
		}
		data["Services"] = list
	}
	notice := ""
	if saved != "" {
		notice = a.cat.T(l, "citizen.web.saved")
	}
	a.page(w, r, http.StatusOK, "app", webPage{Title: a.cat.T(l, "citizen.web.profile_title"), FiscalCode: fiscalcode.Mask(fc), Notice: notice, Data: data})
}

func (a *API) appSaveProfile(w http.ResponseWriter, r *http.Request, fc string) {
	mode := r.PostFormValue("mode")
	email := strings.TrimSpace(r.PostFormValue("email"))
	on := func(k string) *bool { v := r.PostFormValue(k) == "on"; return &v }
	u := ProfileUpdate{Email: &email, IsEmailEnabled: on("is_email_enabled"), IsInboxEnabled: on("is_inbox_enabled"),
		IsWebhookEnabled: on("is_webhook_enabled")}
	if mode != "" {
		u.ServicePreferencesSettings = &struct {
			Mode string `json:"mode"`
		}{Mode: mode}
	}
	if bad := u.validate(); len(bad) > 0 {
		a.page(w, r, http.StatusUnprocessableEntity, "app", webPage{Title: a.cat.T(webLang(r), "citizen.web.profile_title"),
			FiscalCode: fiscalcode.Mask(fc), Error: a.cat.T(webLang(r), bad[sortedKeys(bad)[0]]), Data: map[string]any{"First": true}})
		return
	}
	if _, _, err := a.saveProfile(r.Context(), fc, u); err != nil && !errors.Is(err, errLegacyReturn) {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/citizen/app?saved=1", http.StatusSeeOther)
}

// appValidateEmail stands in for the e-mail confirmation link, which needs
// a mailbox the developer may not have.
func (a *API) appValidateEmail(w http.ResponseWriter, r *http.Request, fc string) {
	err := a.db.WriteTx(r.Context(), func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(r.Context(), `UPDATE profiles SET is_email_validated = 1, updated_at = ? WHERE fiscal_code = ? AND email <> ''`, a.now(), fc)
		return err
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/citizen/app?saved=1", http.StatusSeeOther)
}

func (a *API) appToggleService(w http.ResponseWriter, r *http.Request, fc string) {
	ctx := r.Context()
	// The API's look-up, with the app's pages for its failures: a form
	// answered with a JSON problem left the citizen on raw text.
	p, err := loadProfile(ctx, a.db.R, fc)
	if errors.Is(err, db.ErrNotFound) {
		http.Redirect(w, r, "/citizen/app", http.StatusSeeOther) // the first visit's page creates it
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	s, err := a.serviceReaching(ctx, r.PathValue("sid"), fc)
	if errors.Is(err, db.ErrNotFound) {
		a.page(w, r, http.StatusNotFound, "notfound", webPage{FiscalCode: fiscalcode.Mask(fc)})
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	on := r.PostFormValue("enable") == "1" // parses the form
	// Back to the same search, filter and page, read as the page reads
	// them: only a query of /citizen/app, never an address from the form.
	back := servicesQueryFrom(r.PostForm)
	if p.Mode == preferences.Legacy {
		http.Redirect(w, r, back.link(), http.StatusSeeOther)
		return
	}
	pref := ServicePreference{IsInboxEnabled: on, IsEmailEnabled: on, IsWebhookEnabled: on, SettingsVersion: p.PrefVersion}
	if err := a.savePreference(ctx, fc, s, pref); err != nil && !errors.Is(err, errStaleSettings) {
		a.serverError(w, r, err)
		return
	}
	v := back.values()
	v.Set("saved", s.PublicID)
	http.Redirect(w, r, "/citizen/app?"+v.Encode()+"#services", http.StatusSeeOther)
}

func (a *API) appInbox(w http.ResponseWriter, r *http.Request, fc string) {
	filter := r.URL.Query().Get("filter")
	if filter != FilterUnread && filter != FilterRead && filter != FilterArchived {
		filter = FilterInbox
	}
	cursor, _ := decodeCursor(r.URL.Query().Get("cursor"))
	items, next, err := a.listInbox(r.Context(), fc, filter, cursor, 20)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.page(w, r, http.StatusOK, "inbox", webPage{Title: a.cat.T(webLang(r), "citizen.web.inbox_title"), FiscalCode: fiscalcode.Mask(fc),
		Data: map[string]any{"Items": items, "Next": next, "Filter": filter}})
}

func (a *API) appMessage(w http.ResponseWriter, r *http.Request, fc string) {
	ctx, id := r.Context(), r.PathValue("id")
	row, err := a.loadMessage(ctx, a.db.R, fc, id)
	if errors.Is(err, db.ErrNotFound) {
		a.page(w, r, http.StatusNotFound, "notfound", webPage{FiscalCode: fiscalcode.Mask(fc)})
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !row.IsRead { // opening a message reads it, as in the app
		t := true
		if err := a.setStatus(ctx, fc, id, &t, nil); err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	d := row.detail()
	a.page(w, r, http.StatusOK, "message", webPage{Title: d.Subject, FiscalCode: fiscalcode.Mask(fc),
		Data: map[string]any{"M": d, "HTML": template.HTML(d.HTML)}}) //nolint:gosec // sanitized by RenderMarkdown
}

func (a *API) appMessageStatus(w http.ResponseWriter, r *http.Request, fc string) {
	var read, archived *bool
	set := func(k string) *bool {
		v := r.PostFormValue(k)
		if v == "" {
			return nil
		}
		b := v == "1"
		return &b
	}
	read, archived = set("is_read"), set("is_archived")
	err := a.setStatus(r.Context(), fc, r.PathValue("id"), read, archived)
	if errors.Is(err, db.ErrNotFound) {
		a.page(w, r, http.StatusNotFound, "notfound", webPage{FiscalCode: fiscalcode.Mask(fc)})
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/citizen/app/messages", http.StatusSeeOther)
}

func (a *API) appDelete(w http.ResponseWriter, r *http.Request, fc string) {
	if err := a.deleteAccount(r.Context(), fc); err != nil && !errors.Is(err, db.ErrNotFound) {
		a.serverError(w, r, err)
		return
	}
	a.logout(w, r)
}
