package e2e

import (
	"fmt"
	"strings"
	"testing"

	"sportello/messaging/fiscalcode"
)

// orgCode completes ten digits with the check digit that makes a valid
// organisation fiscal code, and returns also a code with a wrong check digit.
func orgCode(t *testing.T, first10 string) (valid, wrong string) {
	t.Helper()
	for d := 0; d <= 9; d++ {
		c := fmt.Sprintf("%s%d", first10, d)
		if fiscalcode.ValidOrganization(c) {
			return c, fmt.Sprintf("%s%d", first10, (d+1)%10)
		}
	}
	t.Fatalf("no check digit makes %s valid", first10)
	return "", ""
}

// person is someone in the journey.
type person struct {
	name, email, password string
}

var (
	anna  = person{"Anna Rossi", "anna.rossi@comune.esempio.it", "il gatto dorme sul divano"}
	marco = person{"Marco Bianchi", "marco.bianchi@comune.esempio.it", "la bicicletta rossa corre"}
)

const instName = "Comune di Esempio"

// journey is the state shared by the steps of the onboarding journey: the
// server, the browser, one tab per person, and what they learned so far.
type journey struct {
	t         *testing.T
	srv       *server
	b         *browser
	cf, badCF string // the institution's fiscal code, and one with a typo

	anna, marco, platform, citizen *tab

	instPath string // /i/{iid}
	svcPath  string // /i/{iid}/services/{sid}
	testKey  string // the primary test key, shown once
	testKey2 string // the secondary one
}

// TestJourney walks the onboarding journey in Chromium as its users would,
// asserting what they see at each step. Every page visited passes the
// accessibility and phone-width checks (checkPage); the main pages are saved
// as screenshots. A step that breaks stops the journey.
func TestJourney(t *testing.T) {
	srv := startServer(t)
	j := &journey{t: t, srv: srv, b: newBrowser(t, srv.URL)}
	j.cf, j.badCF = orgCode(t, "0123271037")

	j.register()
	j.team()
	j.auditAndAccount()
	j.console()
	j.createService()
	j.card()
	j.checklist()
	j.citizenSignsUp()
	j.sendTest()
	j.submit()
	j.reject()
	j.approve()
	j.live()
}

// register: Anna discovers Sportello and registers her institution.
func (j *journey) register() {
	t := j.t
	j.anna = j.b.newTab("anna")
	a := j.anna
	a.open("/").status(200).heading(it("landing.h1")).screenshot("01-landing")

	// Keyboard: the first Tab shows the skip link, Enter jumps to the
	// content, and the next Tab lands on a control with a visible ring.
	a.press("\t")
	if !eval[bool](a, `document.activeElement.classList.contains('skip-link') && document.activeElement.getBoundingClientRect().top >= 0`) {
		t.Errorf("the first Tab does not reach a visible skip link")
	}
	a.press("\r")
	if id := eval[string](a, `document.activeElement.id`); id != "main" {
		t.Errorf("the skip link moves the focus to %q, want main", id)
	}
	a.press("\t")
	if desc, ok := a.focusRing(); !ok {
		t.Errorf("focused %s shows no focus ring", desc)
	}

	// The language switch works without leaving the page.
	a.click(`.lang-switch button[value="en"]`).heading(catalog.T("en", "landing.h1"))
	if lang := eval[string](a, `document.documentElement.lang`); lang != "en" {
		t.Errorf("html lang is %q after switching to English", lang)
	}
	a.click(`.lang-switch button[value="it"]`).heading(it("landing.h1"))

	a.click(`main a[href="/register"]`).heading(it("register.title")).screenshot("02-register")

	// A mistake in the fiscal code: the error is next to the field, the
	// summary links to it and receives the focus, nothing is created.
	fillRegister(a, j.badCF, anna)
	a.click(`main form button[type="submit"]`).status(422).
		heading(it("register.title")).
		fieldError("inst_fiscal_code", it("register.inst_fiscal_code.check"))
	if !eval[bool](a, `document.activeElement && document.activeElement.classList.contains('error-summary')`) {
		t.Errorf("the error summary does not receive the focus")
	}
	if got := eval[string](a, `document.getElementById('f-inst_name').value`); got != instName {
		t.Errorf("the form lost what Anna typed: institution name is %q", got)
	}
	a.screenshot("03-register-error")

	// She fixes it (passwords are never sent back, so she types them again).
	a.fill("#f-inst_fiscal_code", j.cf)
	a.fill("#f-password", anna.password).fill("#f-password_confirm", anna.password)
	a.click(`main form button[type="submit"]`).status(200).
		heading(instName).
		flash(it("register.done", instName)).
		see(it("dashboard.you_admin"), j.cf)
	j.instPath = strings.TrimSuffix(a.location(), "/")
	instPath := j.instPath
	if !strings.HasPrefix(instPath, "/i/") {
		t.Fatalf("after registering Anna is at %s, want her institution's dashboard", instPath)
	}
	a.screenshot("04-dashboard")

}

// team: Anna invites Marco, who joins from his own browser; Anna makes him
// an admin.
func (j *journey) team() {
	t, a, instPath := j.t, j.anna, j.instPath
	a.click(`.main-nav a[href="`+instPath+`/members"]`).heading(it("members.title")).
		see(anna.email, it("members.pending.empty"))
	a.fill("#f-email", "not-an-email").click(`form[action$="/members/invite"] button[type="submit"]`).
		status(422).fieldError("email", it("field.email"))
	a.fill("#f-email", marco.email).choose("#f-role", "operator").
		click(`form[action$="/members/invite"] button[type="submit"]`).
		heading(it("members.title")).see(it("members.link.heading"), marco.email)
	link := a.text("#invite-link")
	if !strings.HasPrefix(link, j.srv.URL+"/invite/") {
		t.Fatalf("invitation link %q does not point at this server", link)
	}
	// The copy button confirms the copy in words.
	a.clickStay(`[data-copy="#invite-link"]`)
	if got := a.text(`[data-copy="#invite-link"]`); got != it("common.copied") {
		t.Errorf("copy button says %q after copying, want %q", got, it("common.copied"))
	}
	a.screenshot("05-members-invite")

	// --- Marco accepts in his own browser and creates his account. ---
	j.marco = j.b.newTab("marco")
	m := j.marco
	m.open(strings.TrimPrefix(link, j.srv.URL)).heading(it("invite.title")).
		see(it("invite.lead", instName), it("role.operator"), marco.email)
	m.screenshot("06-invite-accept")
	m.fill("#f-name", marco.name).fill("#f-password", "short").fill("#f-password_confirm", "short").
		click(`main form button[type="submit"]`).status(422).heading(it("invite.title"))
	if m.count(".field-error") == 0 {
		t.Errorf("a too short password shows no error next to the field")
	}
	m.fill("#f-password", marco.password).fill("#f-password_confirm", marco.password).
		click(`main form button[type="submit"]`).
		flash(it("invite.accepted", instName)).
		heading(instName).see(it("dashboard.you_operator"))
	// An operator does not see the audit log in the navigation.
	if m.count(`.main-nav a[href="`+instPath+`/audit"]`) != 0 {
		t.Errorf("an operator sees the audit log link")
	}
	// The link works once only.
	other := j.b.newTab("stranger")
	other.open(strings.TrimPrefix(link, j.srv.URL)).heading(it("invite.title")).see(it("invite.used"))

	// --- Anna makes Marco an admin. ---
	a.open(instPath+"/members").see(marco.name, it("members.pending.empty"))
	roleSel := "#" + eval[string](a, fmt.Sprintf(`[...document.querySelectorAll('main tbody tr')].find(tr => tr.innerText.includes(%q)).querySelector('select').id`, marco.email))
	if got := eval[string](a, `document.querySelector('`+roleSel+`').value`); got != "operator" {
		t.Fatalf("Marco's role shows %q, want operator", got)
	}
	a.choose(roleSel, "admin").
		click(fmt.Sprintf(`form[action$="/role"]:has(%s) button[type="submit"]`, roleSel)).
		flash(it("members.role.changed", marco.name))
	if got := eval[string](a, `document.querySelector('`+roleSel+`').value`); got != "admin" {
		t.Errorf("after the change Marco's role shows %q, want admin", got)
	}

	// Removing someone asks first; saying no keeps them.
	removeBtn := fmt.Sprintf(`form[action$="/remove"][data-confirm*=%q] button`, marco.name)
	a.takeDialogs()
	a.accept.Store(false)
	a.clickStay(removeBtn)
	a.accept.Store(true)
	if d := a.takeDialogs(); len(d) != 1 || d[0] != it("members.remove.confirm", marco.name) {
		t.Errorf("remove asked %q, want one question %q", d, it("members.remove.confirm", marco.name))
	}
	a.open(instPath + "/members").see(marco.email)

	m.open(instPath + "/").see(it("dashboard.you_admin"))

}

// auditAndAccount: the audit log tells the story; the error and account
// pages.
func (j *journey) auditAndAccount() {
	a, instPath := j.anna, j.instPath
	a.click(`.main-nav a[href="`+instPath+`/audit"]`).heading(it("audit.title")).
		see(it("audit.action.institution.register"), it("audit.action.member.invite"), it("audit.action.member.join"), it("audit.action.member.role"),
			marco.email, it("role.operator")+" → "+it("role.admin"))
	a.screenshot("07-audit")
	a.choose("#f-action", "member.role").click(`form[role="search"] button[type="submit"]`)
	if a.count(`tbody [title="member.role"]`) == 0 || a.count(`tbody [title="institution.register"]`) != 0 {
		j.t.Errorf("filtering by %q: %s", it("audit.action.member.role"), normalize(a.text("tbody")))
	}

	// Another institution's pages do not exist for Anna; the error page
	// says so plainly and passes the same checks as any page.
	a.open("/i/999/members").status(404).heading(it("error.notfound.title")).see(it("error.notfound.body"))

	a.open("/account").heading(it("account.title")).see(anna.email).screenshot("08-account")

	// The institution's settings: the fiscal code is shown, not editable.
	a.open(instPath + "/").click(`.main-nav a[href="` + instPath + `/settings"]`).heading(it("settings.title")).see(j.cf)
	a.fill("#f-inst_pec", "pec sbagliata").click(`main form button[type="submit"]`).
		fieldError("inst_pec", it("field.email"))
	a.fill("#f-inst_pec", "protocollo@pec.comune.esempio.it").click(`main form button[type="submit"]`).
		flash(it("settings.saved"))
	a.screenshot("08b-settings")

}

// console: the platform admin sees the institution in the console.
func (j *journey) console() {
	t := j.t
	j.platform = j.b.newTab("platform")
	p := j.platform
	p.open("/login").heading(it("login.title"))
	p.fill("#f-email", adminEmail).fill("#f-password", "wrong password here").
		click(`main form button[type="submit"]`).see(it("login.invalid"))
	p.screenshot("09-login-error")
	// Someone who forgot the password asks for a link; the answer is the
	// same whether or not the address has an account.
	p.click(`main a[href="/password/forgot"]`).heading(it("reset.forgot.title"))
	p.fill("#f-email", adminEmail).click(`main form button[type="submit"]`).
		heading(it("reset.forgot.title")).see(it("reset.forgot.sent", adminEmail))
	p.screenshot("09b-password-forgot")
	p.open("/login").heading(it("login.title"))
	// This time by keyboard only: Tab to the email field, type, Tab to the
	// password, type, Enter.
	p.tabTo("#f-email").press(adminEmail).press("\t")
	if id := eval[string](p, `document.activeElement.id`); id != "f-password" {
		t.Fatalf("Tab from the email field goes to %q, want the password", id)
	}
	p.press(adminPassword).pressAndWait("\r")
	p.open("/admin").heading(it("admin.title")).screenshot("10-admin")
	if !eval[bool](p, `document.body.classList.contains('console')`) {
		t.Errorf("the console pages do not carry the console look")
	}
	p.click(`.main-nav a[href="/admin/institutions"]`).heading(it("admin.institutions.title")).see(instName, j.cf)
	p.screenshot("11-admin-institutions")
	p.click(`.main-nav a[href="/admin/audit"]`).heading(it("audit.title")).see(it("audit.action.institution.register"), anna.email)

}

func fillRegister(tb *tab, cf string, p person) {
	tb.t.Helper()
	tb.fill("#f-inst_name", instName).
		fill("#f-inst_fiscal_code", cf).
		fill("#f-inst_pec", "protocollo@pec.comune.esempio.it").
		fill("#f-name", p.name).
		fill("#f-email", p.email).
		fill("#f-password", p.password).
		fill("#f-password_confirm", p.password)
}
