package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sportello/static"
)

// fixturePage uses every behaviour of static/js/app.js, under the same
// strict CSP as the portal. The templates of the portal use the same data
// attributes; this page exercises those the journey does not reach yet.
const fixturePage = `<!doctype html>
<html lang="it"><head><meta charset="utf-8"><title>Prova app.js</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/css/app.css">
<script src="/static/js/app.js" defer></script></head>
<body><main id="main" class="wrap">
<h1>Prova dei comportamenti</h1>
<div class="error-summary" role="alert" tabindex="-1" data-autofocus><h2>Correggi questi campi</h2>
<ul><li><a href="#f-name">Nome mancante</a></li></ul></div>

<div class="field"><label for="f-name">Nome del servizio</label>
<input id="f-name" name="name" data-preview="name"></div>
<div class="field"><label for="f-scope">Ambito</label>
<select id="f-scope" name="scope" data-preview="scope"><option value="">Scegli</option><option value="LOCAL">Locale</option><option value="NATIONAL">Nazionale</option></select></div>
<div class="check"><input type="checkbox" id="f-secure" data-preview="secure"><label for="f-secure">Solo canali sicuri</label></div>
<aside class="phone-preview" aria-label="Anteprima">
<h2 id="p-name" data-preview-target="name" data-preview-empty="Nome del servizio">Nome del servizio</h2>
<p id="p-scope" data-preview-target="scope"></p>
<p id="p-secure" data-preview-target="secure" hidden>Contenuto protetto</p>
</aside>

<p class="secret-row"><code id="key" class="secret">chiave-segreta-123</code>
<button type="button" class="btn btn-small btn-secondary" id="copy" data-copy="#key" data-copied-label="Copiato">Copia</button></p>

<form method="post" action="/done" id="del-form" data-confirm="Vuoi eliminare il servizio?">
<button type="submit" class="btn btn-danger" id="del">Elimina</button></form>
<form method="post" action="/done" id="key-form">
<button type="submit" class="btn btn-danger" id="revoke" name="what" value="revoke" data-confirm="Vuoi revocare la chiave?">Revoca</button></form>
<form method="post" action="/slow" id="once-form">
<button type="submit" class="btn" id="once" name="what" value="create">Crea il servizio</button></form>
<form method="get" action="/done" id="filter-form">
<label for="f-period">Periodo</label>
<select id="f-period" name="period" data-autosubmit><option value="7">7 giorni</option><option value="30">30 giorni</option></select>
<button type="submit" class="btn btn-secondary">Mostra</button></form>

<div class="table-wrap"><table><caption>Messaggi inviati</caption>
<thead><tr><th scope="col">Codice</th><th scope="col">Oggetto</th><th scope="col">Stato</th><th scope="col">Inviato</th><th scope="col">Letto</th></tr></thead>
<tbody><tr><td>RSSMRA80A01H501U</td><td>Promemoria per il rinnovo della carta d'identità elettronica</td><td>consegnato</td><td>25/11/2026 06:37</td><td>25/11/2026 07:12</td></tr></tbody>
</table></div>
</main></body></html>`

// slowPosts counts the posts of the fixture's slow form.
var slowPosts atomic.Int32

func startFixture(t *testing.T) (url string, posts *atomic.Int32) {
	t.Helper()
	posts = &atomic.Int32{}
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(static.FS)))
	mux.HandleFunc("/fixture", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, fixturePage)
	})
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="it"><head><title>Fatto</title></head><body><main><h1>Fatto: %s %s</h1></main></body></html>`,
			r.Method, r.URL.Query().Get("period"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		slowPosts.Add(1)
		what := r.FormValue("what")
		time.Sleep(800 * time.Millisecond) // a slow save: time for a second click
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="it"><head><title>Fatto</title></head><body><main><h1>Salvato: %s</h1></main></body></html>`, what)
	})
	// The portal's CSP: app.js must work without inline script or style.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, posts
}

func TestAppJS(t *testing.T) {
	requireBrowser(t)
	url, posts := startFixture(t)
	b := newBrowser(t, url)
	p := b.newTab("fixture")
	p.open("/fixture").heading("Prova dei comportamenti")

	t.Run("autofocus", func(t *testing.T) {
		if !eval[bool](p, `document.activeElement.classList.contains('error-summary')`) {
			t.Errorf("the error summary is not focused on load")
		}
	})

	t.Run("preview is text only", func(t *testing.T) {
		p.fill("#f-name", "<b>Tari</b> 2026")
		if got := p.text("#p-name"); got != "<b>Tari</b> 2026" {
			t.Errorf("preview shows %q", got)
		}
		if n := p.count("#p-name b"); n != 0 {
			t.Errorf("the preview turned typed text into markup")
		}
		p.fill("#f-name", "")
		if got := p.text("#p-name"); got != "Nome del servizio" {
			t.Errorf("empty input: preview shows %q, want the placeholder", got)
		}
		p.choose("#f-scope", "NATIONAL")
		if got := p.text("#p-scope"); got != "Nazionale" {
			t.Errorf("select preview shows %q, want the option's label", got)
		}
		if !eval[bool](p, `document.getElementById('p-secure').hidden`) {
			t.Fatal("the checkbox target is visible before checking")
		}
		p.clickStay("#f-secure")
		if eval[bool](p, `document.getElementById('p-secure').hidden`) {
			t.Errorf("checking the box does not show its target")
		}
	})

	t.Run("copy", func(t *testing.T) {
		p.clickStay("#copy")
		if got := p.text("#copy"); got != "Copiato" {
			t.Errorf("copy button says %q after the click", got)
		}
		if got := p.text("#copy + [role=status]"); got != "Copiato" {
			t.Errorf("the live region says %q", got)
		}
		time.Sleep(2300 * time.Millisecond)
		if got := p.text("#copy"); got != "Copia" {
			t.Errorf("copy button still says %q after 2 s", got)
		}
	})

	t.Run("confirm", func(t *testing.T) {
		p.takeDialogs()
		p.accept.Store(false)
		p.clickStay("#del")
		p.clickStay("#revoke")
		p.accept.Store(true)
		d := p.takeDialogs()
		if strings.Join(d, "|") != "Vuoi eliminare il servizio?|Vuoi revocare la chiave?" {
			t.Errorf("dialogs asked %q", d)
		}
		if n := posts.Load(); n != 0 {
			t.Fatalf("%d forms were sent although the person said no", n)
		}
		p.click("#revoke").heading("Fatto: POST")
		if n := posts.Load(); n != 1 {
			t.Errorf("after saying yes, %d forms were sent, want 1", n)
		}
	})

	t.Run("a double click sends the form once", func(t *testing.T) {
		p.open("/fixture")
		slowPosts.Store(0)
		eval[bool](p, `(() => {
		  const b = document.getElementById('once');
		  b.click();
		  setTimeout(() => b.click(), 150);
		  setTimeout(() => b.click(), 400);
		  return true;
		})()`)
		// Wait for the answer page (and a little more, for late copies).
		deadline := time.Now().Add(8 * time.Second)
		for !strings.HasPrefix(p.location(), "/slow") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond)
		p.heading("Salvato: create") // the pressed button's value went with the form
		if n := slowPosts.Load(); n != 1 {
			t.Errorf("three clicks sent the form %d times, want 1", n)
		}
	})

	t.Run("autosubmit", func(t *testing.T) {
		p.open("/fixture")
		p.chooseAndWait("#f-period", "30").heading("Fatto: GET 30")
	})

	t.Run("scrolling table is reachable by keyboard", func(t *testing.T) {
		p.open("/fixture")
		p.setWidth(phoneW, phoneH)
		defer p.setWidth(desktopW, desktopH)
		type wrap struct {
			Tab   string `json:"tab"`
			Label string `json:"label"`
		}
		w := eval[wrap](p, `(() => { const w = document.querySelector('.table-wrap'); return {tab: w.getAttribute('tabindex') || '', label: w.getAttribute('aria-label') || ''}; })()`)
		if w.Tab != "0" || w.Label != "Messaggi inviati" {
			t.Errorf("overflowing table wrapper: tabindex %q, label %q", w.Tab, w.Label)
		}
	})
}
