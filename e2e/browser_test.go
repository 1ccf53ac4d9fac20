package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"sportello/templates/i18n"
)

// Viewport sizes: a desktop and the narrowest phone we support.
const (
	desktopW, desktopH = 1280, 900
	phoneW, phoneH     = 360, 740
	stepTimeout        = 30 * time.Second
)

var catalog = i18n.MustLoad()

// it returns the Italian text of a catalog key: the browser asks for Italian,
// so pages must show exactly this.
func it(key string, args ...any) string { return catalog.T("it", key, args...) }

// chromePath finds the browser, or "" when there is none.
func chromePath() string {
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// requireBrowser skips the test when no browser exists, unless CI demands
// the browser tests (SPORTELLO_E2E_REQUIRED), where a missing browser fails.
func requireBrowser(t *testing.T) string {
	t.Helper()
	p := chromePath()
	if p == "" {
		if os.Getenv("SPORTELLO_E2E_REQUIRED") != "" {
			t.Fatal("SPORTELLO_E2E_REQUIRED is set but no Chromium was found: install chromium or set CHROME_PATH")
		}
		t.Skip("no Chromium found (set CHROME_PATH or install chromium); browser tests skipped")
	}
	return p
}

var (
	axeOnce sync.Once
	axeSrc  string
	axeErr  error
)

// axeSource reads axe-core as installed by `npm install --prefix e2e/node axe-core@4`.
func axeSource(t testing.TB) string {
	t.Helper()
	axeOnce.Do(func() {
		p := filepath.Join(moduleRoot(t), "e2e", "node", "node_modules", "axe-core", "axe.min.js")
		b, err := os.ReadFile(p)
		if err != nil {
			axeErr = fmt.Errorf("axe-core missing (%w): run `npm install --prefix e2e/node axe-core@4`", err)
			return
		}
		axeSrc = string(b)
	})
	if axeErr != nil {
		t.Fatal(axeErr)
	}
	return axeSrc
}

// browser is one headless Chromium shared by the tabs of a test.
type browser struct {
	t     *testing.T
	ctx   context.Context // a started browser context; tabs derive from it
	base  string          // the server's URL
	shots *shotWriter
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := requireBrowser(t)
	axeSource(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(desktopW, desktopH),
		chromedp.Flag("lang", "it-IT"),
		chromedp.Flag("accept-lang", "it-IT,it"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting Chromium %s: %v", exe, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return &browser{t: t, ctx: ctx, base: base, shots: newShotWriter(t)}
}

// tab is one person at their own browser: a separate browser context, so
// its own cookies and session.
type tab struct {
	t    *testing.T
	b    *browser
	who  string
	ctx  context.Context
	resp *network.Response // last document response

	mu         sync.Mutex
	dialogs    []string // messages of confirm()/alert() dialogs seen
	exceptions []string // uncaught JavaScript errors
	accept     atomic.Bool
}

// newTab opens a fresh browser context named after the person using it.
func (b *browser) newTab(who string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	tb := &tab{t: b.t, b: b, who: who, ctx: ctx}
	tb.accept.Store(true)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(desktopW, desktopH)); err != nil {
		b.t.Fatalf("%s: new tab: %v", who, err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			tb.mu.Unlock()
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	// Dialogs block the page until answered: answer them from another
	// goroutine, recording what they asked.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, ev.Message)
			tb.mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: tb.accept.Load()})
		}
	}()
	return tb
}

func (tb *tab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.ctx, stepTimeout)
}

func (tb *tab) fatalf(format string, args ...any) {
	tb.t.Helper()
	tb.t.Fatalf("%s at %s: %s", tb.who, tb.location(), fmt.Sprintf(format, args...))
}

func (tb *tab) errorf(format string, args ...any) {
	tb.t.Helper()
	tb.t.Errorf("%s at %s: %s", tb.who, tb.location(), fmt.Sprintf(format, args...))
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(u, tb.b.base)
}

// open navigates to a path of the server and checks the page.
func (tb *tab) open(path string) *tab {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(tb.b.base+path))
	if err != nil {
		tb.t.Fatalf("%s: open %s: %v", tb.who, path, err)
	}
	tb.resp = resp
	tb.checkPage()
	return tb
}

// mustFind fails at once (rather than wait for a timeout) when nothing on
// the page matches sel: the page is not what the step expects.
func (tb *tab) mustFind(sel string) {
	tb.t.Helper()
	if tb.count(sel) == 0 {
		tb.fatalf("nothing matches %s; the page shows:\n%s", sel, normalize(tb.text("main")))
	}
}

// click clicks an element that leads to a new page (a link or a submit
// button) and waits for that page, then checks it.
func (tb *tab) click(sel string) *tab {
	tb.t.Helper()
	tb.mustFind(sel)
	ctx, cancel := tb.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		tb.fatalf("click %s: %v", sel, err)
	}
	tb.resp = resp
	tb.checkPage()
	return tb
}

// clickStay clicks an element that must not leave the page (a copy button,
// a confirm() that the person refuses).
func (tb *tab) clickStay(sel string) {
	tb.t.Helper()
	tb.mustFind(sel)
	ctx, cancel := tb.step()
	defer cancel()
	before := tb.location()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.fatalf("click %s: %v", sel, err)
	}
	time.Sleep(300 * time.Millisecond) // give a wrong navigation time to start
	if after := tb.location(); after != before {
		tb.fatalf("click %s left the page: now at %s", sel, after)
	}
}

// fill types a value into a field as a person would (clearing it first).
func (tb *tab) fill(sel, value string) *tab {
	tb.t.Helper()
	tb.mustFind(sel)
	ctx, cancel := tb.step()
	defer cancel()
	// Empty the value property (chromedp.Clear only resets the attribute,
	// which a typed-in field ignores) and tell listeners, as deleting would.
	clear := fmt.Sprintf(`(el => { el.value = ''; el.dispatchEvent(new Event('input', {bubbles: true})); })(document.querySelector(%q))`, sel)
	steps := []chromedp.Action[chromedp.Void]{chromedp.WaitReady(chromedp.CSS(sel)), chromedp.Evaluate[chromedp.Void](clear)}
	if value != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS(sel), value))
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.fatalf("fill %s: %v", sel, err)
	}
	return tb
}

// choose picks an option of a select by value.
func (tb *tab) choose(sel, value string) *tab {
	tb.t.Helper()
	tb.mustFind(sel)
	ctx, cancel := tb.step()
	defer cancel()
	// SetValue fires input and change, as a person's choice does.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(sel), value)); err != nil {
		tb.fatalf("choose %s=%s: %v", sel, value, err)
	}
	return tb
}

// press types keys (for example "\t" or "\r") into the focused element.
func (tb *tab) press(keys string) *tab {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(keys)); err != nil {
		tb.fatalf("press %q: %v", keys, err)
	}
	return tb
}

// tabTo presses Tab until sel has the focus (at most 40 times), as a
// keyboard user would, and fails if it never gets there.
func (tb *tab) tabTo(sel string) *tab {
	tb.t.Helper()
	tb.mustFind(sel)
	for range 40 {
		tb.press("\t")
		if eval[bool](tb, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)) {
			if _, ok := tb.focusRing(); !ok {
				tb.errorf("%s has the focus but shows no focus ring", sel)
			}
			return tb
		}
	}
	tb.fatalf("40 presses of Tab never reach %s", sel)
	return tb
}

// pressAndWait presses keys that lead to a new page (Enter in a form) and
// waits for that page.
func (tb *tab) pressAndWait(keys string) *tab {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent(keys))
	if err != nil {
		tb.fatalf("press %q: %v", keys, err)
	}
	tb.resp = resp
	tb.checkPage()
	return tb
}

// focusRing describes the focused element and whether it shows a focus
// ring: an outline of at least 2 px.
func (tb *tab) focusRing() (desc string, visible bool) {
	tb.t.Helper()
	type ring struct {
		Desc    string `json:"desc"`
		Visible bool   `json:"visible"`
	}
	r := eval[ring](tb, `(() => {
	  const el = document.activeElement, cs = getComputedStyle(el);
	  const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2;
	  return {desc: el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '') + ' "' + (el.innerText || '').trim().slice(0, 40) + '"',
	          visible: outline};
	})()`)
	return r.Desc, r.Visible
}

// chooseAndWait picks an option whose change leads to a new page
// (data-autosubmit) and waits for that page.
func (tb *tab) chooseAndWait(sel, value string) *tab {
	tb.t.Helper()
	tb.mustFind(sel)
	ctx, cancel := tb.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.SetValue(chromedp.CSS(sel), value))
	if err != nil {
		tb.fatalf("choose %s=%s: %v", sel, value, err)
	}
	tb.resp = resp
	tb.checkPage()
	return tb
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fatalf("eval %s: %v", expr, err)
	}
	return v
}

// text is the visible text of the first element matching sel ("" if none).
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return strings.TrimSpace(eval[string](tb, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, sel)))
}

func (tb *tab) count(sel string) int {
	tb.t.Helper()
	return eval[int](tb, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// normalize folds whitespace, as a reader sees text.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// see fails unless the page shows each text (in its visible text).
func (tb *tab) see(texts ...string) *tab {
	tb.t.Helper()
	body := normalize(tb.text("body"))
	for _, s := range texts {
		if !strings.Contains(body, normalize(s)) {
			tb.fatalf("page does not show %q; it shows:\n%s", s, body)
		}
	}
	return tb
}

// notSee fails if the page shows any of the texts.
func (tb *tab) notSee(texts ...string) *tab {
	tb.t.Helper()
	body := normalize(tb.text("body"))
	for _, s := range texts {
		if strings.Contains(body, normalize(s)) {
			tb.fatalf("page shows %q but should not", s)
		}
	}
	return tb
}

// heading fails unless the page's only h1 reads want.
func (tb *tab) heading(want string) *tab {
	tb.t.Helper()
	if got := normalize(tb.text("h1")); got != normalize(want) {
		tb.fatalf("h1 is %q, want %q", got, want)
	}
	return tb
}

// status fails unless the last page came with this HTTP status.
func (tb *tab) status(want int) *tab {
	tb.t.Helper()
	if tb.resp == nil || int(tb.resp.Status) != want {
		got := 0
		if tb.resp != nil {
			got = int(tb.resp.Status)
		}
		tb.fatalf("HTTP status %d, want %d", got, want)
	}
	return tb
}

// flash fails unless a flash message shows want.
func (tb *tab) flash(want string) *tab {
	tb.t.Helper()
	got := normalize(tb.text(".flash"))
	if !strings.Contains(got, normalize(want)) {
		tb.fatalf("flash message is %q, want %q", got, want)
	}
	return tb
}

// fieldError fails unless the field shows the error next to it and the
// error summary links to it.
func (tb *tab) fieldError(name, want string) *tab {
	tb.t.Helper()
	got := normalize(tb.text("#f-" + name + "-error"))
	if !strings.Contains(got, normalize(want)) {
		tb.fatalf("error next to field %s is %q, want %q", name, got, want)
	}
	if tb.count(fmt.Sprintf(`.error-summary a[href="#f-%s"]`, name)) != 1 {
		tb.fatalf("the error summary has no link to field %s", name)
	}
	if v := eval[string](tb, fmt.Sprintf(`document.getElementById('f-%s').getAttribute('aria-invalid') || ''`, name)); v != "true" {
		tb.fatalf("field %s is not marked aria-invalid", name)
	}
	return tb
}

// takeDialogs returns and forgets the dialog messages seen so far.
func (tb *tab) takeDialogs() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	d := tb.dialogs
	tb.dialogs = nil
	return d
}

// screenshot saves the current page at desktop and phone width.
func (tb *tab) screenshot(name string) *tab {
	tb.t.Helper()
	tb.b.shots.save(tb, name)
	return tb
}

// setWidth switches the viewport and waits for the layout to follow.
func (tb *tab) setWidth(w, h int64) {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		tb.fatalf("viewport %dx%d: %v", w, h, err)
	}
	// app.js re-checks scrolling tables on resize; two frames settle layout.
	eval[bool](tb, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
}

// checkPage runs on every page a test reaches: server errors, JavaScript
// errors, one h1, no inline style, no serious accessibility violation, and
// no page-wide horizontal scrolling at phone width.
func (tb *tab) checkPage() {
	tb.t.Helper()
	start := time.Now()
	defer func() {
		status := 0
		if tb.resp != nil {
			status = int(tb.resp.Status)
		}
		tb.t.Logf("%s → %s (%d), checked in %v", tb.who, tb.location(), status, time.Since(start).Round(time.Millisecond))
	}()
	if tb.resp != nil && tb.resp.Status >= 500 {
		tb.errorf("server error %d", tb.resp.Status)
	}
	tb.mu.Lock()
	exc := tb.exceptions
	tb.exceptions = nil
	tb.mu.Unlock()
	for _, e := range exc {
		tb.errorf("JavaScript error: %s", e)
	}
	if n := tb.count("h1"); n != 1 {
		tb.errorf("page has %d h1 elements, want exactly 1", n)
	}
	if n := tb.count("[style]"); n != 0 {
		tb.errorf("%d elements carry a style attribute, which the CSP blocks", n)
	}
	if title := eval[string](tb, `document.title`); strings.TrimSpace(title) == "" || strings.HasPrefix(title, " ·") {
		tb.errorf("page has no title (%q)", title)
	}
	tb.checkAxe()
	tb.checkPhoneWidth()
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAxe injects axe-core through the DevTools protocol (Runtime.evaluate
// is not subject to the page's CSP) and reports serious and critical
// violations.
func (tb *tab) checkAxe() {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`if (typeof axe === 'undefined') { `+axeSource(tb.t)+` }`)); err != nil {
		tb.fatalf("injecting axe-core: %v", err)
	}
	const run = `(async () => {
	  const r = await axe.run(document, {resultTypes: ['violations']});
	  return r.violations
	    // "region" (content outside landmarks) is moderate for axe, but the
	    // portal's layout keeps it clean; the citizen app's layout is not
	    // held to it yet.
	    .filter(v => v.impact === 'serious' || v.impact === 'critical' ||
	      (v.id === 'region' && !location.pathname.startsWith('/citizen')))
	    .map(v => ({id: v.id, impact: v.impact, help: v.help,
	      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').replace(/\s+/g, ' '))}));
	})()`
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](run, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fatalf("running axe-core: %v", err)
	}
	for _, v := range vs {
		tb.errorf("accessibility (%s) %s: %s\n    %s", v.Impact, v.ID, v.Help, strings.Join(v.Nodes, "\n    "))
	}
}

// checkPhoneWidth fails when something other than a scrolling wrapper
// (.table-wrap, pre) makes the page wider than a 360 px phone.
func (tb *tab) checkPhoneWidth() {
	tb.t.Helper()
	tb.setWidth(phoneW, phoneH)
	defer tb.setWidth(desktopW, desktopH)
	const find = `(() => {
	  const w = document.documentElement.clientWidth;
	  if (document.documentElement.scrollWidth <= w) return [];
	  const out = [];
	  for (const el of document.querySelectorAll('body *')) {
	    if (el.closest('.table-wrap, pre, .tabs')) continue;
	    const r = el.getBoundingClientRect();
	    if (r.width > 0 && r.right > w + 1) {
	      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '') + ' right=' + Math.round(r.right));
	      if (out.length >= 5) break;
	    }
	  }
	  return out.length ? out : ['page scrollWidth ' + document.documentElement.scrollWidth];
	})()`
	if wide := eval[[]string](tb, find); len(wide) > 0 {
		tb.errorf("wider than a %d px phone:\n    %s", phoneW, strings.Join(wide, "\n    "))
	}
}

// shotWriter saves screenshots into $SPORTELLO_SCREENSHOTS (relative paths
// are taken from the module root, so the documented command works from
// there) or into a temporary directory.
type shotWriter struct {
	dir string
}

func newShotWriter(t *testing.T) *shotWriter {
	dir := os.Getenv("SPORTELLO_SCREENSHOTS")
	switch {
	case dir == "":
		dir = t.TempDir()
	case !filepath.IsAbs(dir):
		dir = filepath.Join(moduleRoot(t), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &shotWriter{dir: dir}
}

func (s *shotWriter) save(tb *tab, name string) {
	tb.t.Helper()
	// The whole page, but no taller than maxH: very long pages (the
	// checklist, the API guide) would make the repository heavy.
	for _, v := range []struct {
		suffix string
		w, h   int64
		maxH   int64
	}{{"desktop", desktopW, desktopH, 2400}, {"phone", phoneW, phoneH, 3200}} {
		tb.setWidth(v.w, v.h)
		height := min(max(int64(eval[float64](tb, `document.documentElement.scrollHeight`)), v.h), v.maxH)
		tb.setWidth(v.w, height)
		ctx, cancel := tb.step()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			tb.fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(s.dir, name+"-"+v.suffix+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.setWidth(desktopW, desktopH)
}
