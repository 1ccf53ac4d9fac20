package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"sportello/messaging/fiscalcode"
)

const (
	svcName    = "Promemoria TARI"
	svcDept    = "Ufficio tributi"
	svcDesc    = "Ricevi un promemoria prima della scadenza della tassa sui rifiuti (TARI), con l'avviso di pagamento da pagare online."
	svcPrivacy = "https://www.comune.esempio.it/privacy/tari"
	svcEmail   = "tributi@comune.esempio.it"
)

var (
	testKeyRE = regexp.MustCompile(`\bsp_test_[A-Za-z0-9_\-]+`)
	liveKeyRE = regexp.MustCompile(`\bsp_live_[A-Za-z0-9_\-]+`)
)

// createService: Anna creates a service and sees its test keys once.
func (j *journey) createService() {
	t, a := j.t, j.anna
	a.open(j.instPath + "/")
	a.click(`.main-nav a[href="` + j.instPath + `/services"]`).heading(it("services.title")).
		see(it("services.empty"))
	a.screenshot("12-services-empty")
	a.click(`main a[href="` + j.instPath + `/services/new"]`).heading(it("services.new.title"))

	// Too short a name: the error is next to the field.
	a.fill("#f-name", "Ab").click(`main form button[type="submit"]`).status(422).
		fieldError("name", it("card.err.name_short"))
	a.fill("#f-name", svcName).choose("#f-scope", "LOCAL").click(`main form button[type="submit"]`).
		flash(it("services.created", svcName))

	j.svcPath = strings.TrimSuffix(a.location(), "/keys")
	if !strings.HasPrefix(j.svcPath, j.instPath+"/services/") {
		t.Fatalf("after creating the service Anna is at %s, want a page of the service", a.location())
	}
	// The new keys are on the page once: copy them now.
	keys := testKeyRE.FindAllString(a.text("main"), -1)
	if len(keys) < 2 || keys[0] == keys[1] {
		t.Errorf("after creating the service Anna sees test keys %q, want two different sp_test_ keys", keys)
		return
	}
	j.testKey, j.testKey2 = keys[0], keys[1]
	a.screenshot("13-keys-once")
	a.open(a.location()).notSee(keys[0], keys[1])

	// The keys page leads to the integrators' guide.
	a.click(`main a[href="/docs/api"]`).heading(it("gateway.docs.title")).see("curl", "Ocp-Apim-Subscription-Key")
	a.screenshot("13b-api-docs")

	// The dashboard says what to do next.
	a.open(j.instPath+"/").see(svcName, it("next.card"))
}

// card: Anna fills the service card, makes a mistake, sees the error next
// to the field, fixes it; the preview follows what she types.
func (j *journey) card() {
	t, a := j.t, j.anna
	a.open(j.svcPath).heading(svcName + " " + it("state.draft")).see(it("services.status.draft"))
	// The history says which version each event is about: version 1.
	versionRE := regexp.MustCompile(strings.Replace(regexp.QuoteMeta(it("services.version", 7)), "7", `(\d+)`, 1))
	history := normalize(a.text(".timeline"))
	ms := versionRE.FindAllStringSubmatch(history, -1)
	if len(ms) == 0 {
		t.Errorf("the service history names no version: %q", history)
	}
	for _, m := range ms {
		if m[1] != "1" {
			t.Errorf("the service history shows %q for a service with one version", m[0])
		}
	}
	a.click(`.tabs a[href="` + j.svcPath + `/card"]`).see(it("card.title"))

	// The preview follows the name as it is typed (app.js, text only).
	a.fill("#f-department_name", svcDept)
	if got := a.text(`.phone-preview [data-preview-target="department_name"]`); got != svcDept {
		t.Errorf("the preview shows department %q while Anna typed %q", got, svcDept)
	}
	a.fill("#f-description", svcDesc).
		fill("#f-email", svcEmail).
		fill("#f-recipients", citizenCF()).
		fill("#f-privacy_url", "www.comune.esempio.it/privacy") // no scheme: a mistake
	a.click(`main form[action$="/card"] button[type="submit"]`).status(422).
		fieldError("privacy_url", it("card.err.url"))
	if got := eval[string](a, `document.getElementById('f-description').value`); got != svcDesc {
		t.Errorf("the card form lost the description after the error")
	}
	a.screenshot("14-card-error")
	a.fill("#f-privacy_url", svcPrivacy).
		click(`main form[action$="/card"] button[type="submit"]`).flash(it("card.saved"))
	a.see(svcDept, svcPrivacy)
	a.screenshot("15-card")
}

// checklist: Anna answers every point of the privacy checklist.
func (j *journey) checklist() {
	t, a := j.t, j.anna
	a.open(j.svcPath + "/checklist").see(it("checklist.title"))
	ids := eval[[]string](a, `[...document.querySelectorAll('section.checklist-item')].map(s => s.id)`)
	if len(ids) == 0 {
		t.Fatal("the checklist shows no items")
	}
	// One form: fill every point, then save once.
	for _, id := range ids {
		sec := "#" + id
		// Fill what the point asks: the first real option of each list,
		// one category, the acceptance box, some words in text fields.
		eval[bool](a, `(() => {
		  const s = document.querySelector('`+sec+`');
		  s.querySelector('input[type=radio][value=done]').checked = true;
		  for (const sel of s.querySelectorAll('select')) sel.selectedIndex = 1;
		  const seen = new Set();
		  for (const c of s.querySelectorAll('input[type=checkbox]')) { if (!seen.has(c.name)) { c.checked = true; seen.add(c.name); } }
		  for (const f of s.querySelectorAll('input:not([type]), input[type=text], textarea')) {
		    if (!f.value) f.value = f.name.endsWith('.evidence') ? 'https://www.comune.esempio.it/privacy/tari' : 'Comune di Esempio, ufficio tributi: verificato dal responsabile della protezione dei dati.';
		  }
		  return true;
		})()`)
	}
	a.click(`form.checklist-form button[type="submit"]`)
	if a.count(".flash-success") == 0 {
		t.Fatalf("the checklist was not saved: %s", normalize(a.text("main")))
	}
	a.flash(it("checklist.saved_n", len(ids)))
	a.see(it("next.checklist", len(ids), len(ids)))
	a.screenshot("16-checklist")
	a.open(j.svcPath).see(it("services.todo.card_ok"), it("services.todo.checklist_ok"))
}

// submit: Anna sends the service to review.
func (j *journey) submit() {
	a := j.anna
	a.open(j.svcPath).click(`form[action$="/submit"] button`).
		flash(it("services.submitted")).heading(svcName + " " + it("state.submitted"))
}

// reject: the platform admin rejects with a reason; Anna reads it, fixes the
// card and submits again.
func (j *journey) reject() {
	p, a := j.platform, j.anna
	p.open("/admin/reviews").heading(it("review.queue.title")).see(svcName, instName)
	p.screenshot("20-review-queue")
	p.click(`main a[href^="/admin/reviews/"]`).heading(it("review.title", svcName) + " " + it("state.submitted"))
	p.see(svcDesc, svcPrivacy)
	// A rejection without a reason is refused.
	p.click(`form[action$="/reject"] button[type="submit"]`).status(422).
		fieldError("reason", it("review.reason.required"))
	reason := "Indicate anche un numero di telefono per l'assistenza ai cittadini."
	p.fill("#f-reason", reason).click(`form[action$="/reject"] button[type="submit"]`).
		flash(it("review.rejected", svcName))

	a.open(j.instPath+"/").see(svcName, it("next.rejected"))
	a.open(j.svcPath).heading(svcName+" "+it("state.rejected")).see(it("services.rejected.title"), reason)
	a.screenshot("21-rejected")
	a.open(j.svcPath+"/card").fill("#f-phone", "+39 051 123456").
		click(`main form[action$="/card"] button[type="submit"]`).flash(it("card.saved"))
	j.submit()
}

// approve: the platform admin approves; the service is live.
func (j *journey) approve() {
	p, a := j.platform, j.anna
	p.open("/admin/reviews").click(`main a[href^="/admin/reviews/"]`).
		click(`form[action$="/approve"] button[type="submit"]`).flash(it("review.approved", svcName))
	a.open(j.svcPath).heading(svcName + " " + it("state.approved")).see(it("services.status.approved"))
	a.screenshot("22-approved")
}

// eventually reopens path until ok says the page is ready (delivery and
// metering are asynchronous), or fails after a bound.
func (tb *tab) eventually(path, what string, ok func() bool) *tab {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tb.open(path)
		if ok() {
			return tb
		}
		if time.Now().After(deadline) {
			tb.fatalf("after 20 s still waiting for %s; the page shows:\n%s", what, normalize(tb.text("main")))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// tab fails unless the service tab marked as current reads want.
func (tb *tab) tab(want string) *tab {
	tb.t.Helper()
	if got := tb.text(`.tabs a[aria-current="page"]`); got != want {
		tb.fatalf("current tab is %q, want %q", got, want)
	}
	return tb
}

func (tb *tab) shows(s string) bool {
	return strings.Contains(normalize(tb.text("body")), normalize(s))
}

const (
	testSubject  = "Promemoria: la TARI scade il 16 dicembre"
	liveSubject  = "Avviso TARI 2026: rata di dicembre"
	testMarkdown = "Gentile cittadina, gentile cittadino,\n\nla seconda rata della **TARI 2026** scade il 16 dicembre. Puoi pagarla online dal sito del Comune o presso gli sportelli."
)

// personCF completes 15 characters with the check character.
func personCF(first15 string) string { return first15 + string(fiscalcode.CheckChar(first15)) }

// citizenCF is the citizen of the journey, also the service's test
// recipient; strangerCF is someone else.
func citizenCF() string  { return personCF("RSSMRA80A41H501") }
func strangerCF() string { return personCF("VRDLGU75C12F205") }

// citizenSignsUp: the citizen signs in to the (development) app for the
// first time and keeps the default, quick set-up: every service may write.
func (j *journey) citizenSignsUp() {
	j.citizen = j.b.newTab("citizen")
	c := j.citizen
	c.open("/citizen/login").heading(it("citizen.web.login_title"))
	c.fill("#f-fiscal_code", citizenCF()).click(`main form button[type="submit"]`).
		heading(it("citizen.web.profile_title")).see(it("citizen.web.first_access"))
	c.click(`form[action="/citizen/app/profile"] button[type="submit"]`).see(it("citizen.web.saved"))
}

// sendTest: the integrator sends a test message with the test key; Anna
// sees it in the sandbox, on the messages page and in the usage chart.
func (j *journey) sendTest() {
	t, a := j.t, j.anna
	if j.testKey == "" {
		t.Fatal("no test key was shown, so nothing can be sent")
	}
	in := newIntegrator(t, j.srv.URL, j.testKey)
	// A test key only reaches the test recipients.
	if r := in.send(strangerCF(), testSubject, testMarkdown); r.Status != http.StatusForbidden {
		t.Errorf("a test key sent to a citizen outside the test list: HTTP %d %s, want 403", r.Status, r.Raw)
	}
	// A mistake gets a field-level answer.
	if r := in.send(citizenCF(), "Breve", testMarkdown); r.Status != http.StatusBadRequest || !strings.Contains(r.Raw, "subject") {
		t.Errorf("a too short subject: HTTP %d %s, want 400 naming the subject", r.Status, r.Raw)
	}
	r := in.send(citizenCF(), testSubject, testMarkdown)
	if r.Status != http.StatusCreated || r.Body["id"] == nil {
		t.Fatalf("sending a test message: HTTP %d %s, want 201 with an id", r.Status, r.Raw)
	}
	if r.Header.Get("Location") == "" {
		t.Errorf("the 201 has no Location header")
	}

	// The sandbox recipient every test key may use is a real (if fictitious)
	// citizen: the message is delivered, not rejected as an unknown user.
	const sandboxCF = "AAAAAA00A00A000A"
	sb := in.send(sandboxCF, "Prova sul codice fiscale sandbox", testMarkdown)
	if sb.Status != http.StatusCreated {
		t.Fatalf("sending to the sandbox code: HTTP %d %s, want 201", sb.Status, sb.Raw)
	}
	var sbStatus string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got := in.do("GET", fmt.Sprintf("/api/v1/messages/%s/%v", sandboxCF, sb.Body["id"]), nil)
		if sbStatus, _ = got.Body["status"].(string); sbStatus == "PROCESSED" {
			break
		}
	}
	if sbStatus != "PROCESSED" {
		t.Errorf("the message to the sandbox code ended %q, want PROCESSED", sbStatus)
	}

	processed := it("delivery.sandbox.status", it("delivery.status.PROCESSED"))
	a.eventually(j.svcPath+"/sandbox", "the delivered message in the sandbox", func() bool { return a.shows(testSubject) && a.shows(processed) })
	a.tab(it("services.tab.sandbox")).see(it("delivery.sandbox.title"), "TARI 2026")
	a.screenshot("17-sandbox")
	a.eventually(j.svcPath+"/messages", "the delivery outcome", func() bool { return a.shows(it("delivery.status.PROCESSED")) })
	a.tab(it("services.tab.messages")).see(it("delivery.page.title"), testSubject)
	a.screenshot("18-messages")
	a.eventually(j.svcPath+"/keys", "the accepted request in the usage chart", func() bool {
		return a.count(".chart rect.bar-ok") > 0
	})
	a.tab(it("services.tab.keys")).see(it("keys.chart.title"))
	a.screenshot("19-keys-usage")

	// Revoking the secondary key asks first, then the key stops working.
	if r := newIntegrator(t, j.srv.URL, j.testKey2).send(citizenCF(), testSubject, testMarkdown); r.Status != http.StatusCreated {
		t.Fatalf("the secondary test key does not work before revocation: HTTP %d %s", r.Status, r.Raw)
	}
	a.takeDialogs()
	a.click(`form[action$="/keys/revoke"]:has(input[name="slot"][value="secondary"]):has(input[name="mode"][value="test"]) button[type="submit"]`).
		flash(it("keys.flash.revoked"))
	if d := a.takeDialogs(); len(d) != 1 || d[0] != it("keys.revoke.confirm") {
		t.Errorf("revoking asked %q, want %q", d, it("keys.revoke.confirm"))
	}
	if r := newIntegrator(t, j.srv.URL, j.testKey2).send(citizenCF(), testSubject, testMarkdown); r.Status != http.StatusUnauthorized {
		t.Errorf("a revoked key still answers HTTP %d, want 401", r.Status)
	}
}

// live: after approval Anna creates the production keys (shown once); the
// integrator writes to a real citizen, who reads the message.
func (j *journey) live() {
	t, a := j.t, j.anna
	a.open(j.svcPath + "/keys").see(it("keys.live.none"))
	a.click(`form[action$="/keys/live"] button[type="submit"]`)
	live := liveKeyRE.FindAllString(a.text("main"), -1)
	if len(live) < 1 {
		t.Fatalf("after creating production keys Anna sees no sp_live_ key")
	}
	a.screenshot("23-live-keys")
	a.open(j.svcPath + "/keys").notSee(live[0])

	c := j.citizen
	in := newIntegrator(t, j.srv.URL, live[0])
	r := in.send(citizenCF(), liveSubject, testMarkdown)
	if r.Status != http.StatusCreated {
		t.Fatalf("sending with the live key: HTTP %d %s, want 201", r.Status, r.Raw)
	}
	c.eventually("/citizen/app/messages", "the message in the citizen's inbox", func() bool { return c.shows(liveSubject) })
	c.heading(it("citizen.web.inbox_title")).see(it("citizen.web.from", svcName))
	c.screenshot("24-citizen-inbox")
	href := eval[string](c, fmt.Sprintf(`[...document.querySelectorAll('main a.card-title')].find(a => a.innerText.trim() === %q).getAttribute('href')`, liveSubject))
	c.click(fmt.Sprintf(`main a.card-title[href=%q]`, href)).heading(liveSubject).see("TARI 2026")
	c.screenshot("25-citizen-message")

	// Anyone can see the services that are live.
	s := j.b.newTab("visitor")
	s.open("/").click(`.site-footer a[href="/services"]`).heading(it("public.title")).see(svcName, instName)
	s.screenshot("27-public-services")

	// The console lists the service; the outbox page works.
	j.platform.open("/admin/services").heading(it("admin.services.title")).see(svcName)
	j.platform.screenshot("28-admin-services")
	// Without SMTP the review decisions wait there for admins to read.
	j.platform.open("/admin/mail").heading(it("delivery.mail.title")).see(it("delivery.mail.not_sent"), svcName)
	j.platform.screenshot("29-admin-mail")
	// Platform admins manage their own team there too.
	j.platform.open("/admin/admins").heading(it("admins.title")).see(it("admins.add.heading"))
	j.platform.screenshot("29b-admin-admins")

	// Back at the office, the dashboard shows the service live.
	a.open(j.instPath+"/").see(svcName, it("next.live"))
	a.screenshot("26-dashboard-live")
}
