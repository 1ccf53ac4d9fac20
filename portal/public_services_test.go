package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"sportello/messaging/delivery/deliverytest"
)

// The public list of services is paged: every visible service on one page
// was 0.9 MB and 0.3-0.5 s an answer with 2,000 services, to anyone.
func TestPublicServicesArePaged(t *testing.T) {
	e := newTestEnv(t)
	_, inst := e.registerInst(1, "anna@comune.example.it")
	ctx := context.Background()
	const n = publicServicesPageSize + 7
	for i := 0; i < n; i++ {
		if _, err := deliverytest.AddService(ctx, e.DB, inst, fmt.Sprintf("Servizio pubblico %03d", i), deliverytest.ServiceOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.newClient()
	first := c.get("/services")
	if got := strings.Count(first.Body, `<h2 id="ps-`); got != publicServicesPageSize {
		t.Fatalf("first page lists %d services, want %d", got, publicServicesPageSize)
	}
	mustContain(t, first, "Servizio pubblico 000", `href="/services?page=2"`, "Servizi successivi")
	mustNotContain(t, first, fmt.Sprintf("Servizio pubblico %03d", n-1), "Servizi precedenti")

	second := c.get("/services?page=2")
	if got := strings.Count(second.Body, `<h2 id="ps-`); got != n-publicServicesPageSize {
		t.Fatalf("second page lists %d services, want %d", got, n-publicServicesPageSize)
	}
	mustContain(t, second, fmt.Sprintf("Servizio pubblico %03d", n-1), `href="/services"`, "Servizi precedenti")
	mustNotContain(t, second, "Servizio pubblico 000", "Servizi successivi")

	mustContain(t, c.get("/services?page=9"), "Questa pagina non ha servizi.")
	mustContain(t, c.get("/services?page=x"), "Servizio pubblico 000")
}

// The console's list of services is paged too: it stopped at the first 500
// services, the others out of reach but by a search.
func TestAdminServicesArePaged(t *testing.T) {
	e := newTestEnv(t)
	_, inst := e.registerInst(1, "anna@comune.example.it")
	ctx := context.Background()
	const n = adminServicesPageSize + 3
	for i := 0; i < n; i++ {
		if _, err := deliverytest.AddService(ctx, e.DB, inst, fmt.Sprintf("Servizio numero %03d", i), deliverytest.ServiceOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	pa := e.platformAdmin("root@sportello.example.it")
	limitsForm := regexp.MustCompile(`<form method="post" action="/admin/services/[^"/]+/limits\?`)
	rows := func(r resp) int { return len(limitsForm.FindAllString(r.Body, -1)) } // one limits form a service

	first := pa.get("/admin/services?q=numero")
	if got := rows(first); got != adminServicesPageSize {
		t.Fatalf("first page lists %d services, want %d", got, adminServicesPageSize)
	}
	mustContain(t, first, `href="/admin/services?page=2&q=numero"`, "Servizi successivi")
	second := pa.get("/admin/services?page=2&q=numero")
	if got := rows(second); got != n-adminServicesPageSize {
		t.Fatalf("second page lists %d services, want %d", got, n-adminServicesPageSize)
	}
	mustContain(t, second, fmt.Sprintf("Servizio numero %03d", n-1), `href="/admin/services?q=numero"`, "Servizi precedenti")
	mustNotContain(t, second, "Servizi successivi")

	// A limit changed on the second page: refused, the page that comes
	// back is the second, with the row and its error; saved, the admin
	// is sent back to the second page.
	var last string
	if err := e.DB.R.Get(&last, `SELECT public_id FROM services WHERE name = ?`, fmt.Sprintf("Servizio numero %03d", n-1)); err != nil {
		t.Fatal(err)
	}
	limits := "/admin/services/" + last + "/limits?q=numero&page=2"
	mustContain(t, second, `action="`+limits+`"`)
	bad := pa.post(limits, url.Values{"requests": {"-1"}, "window": {"5"}})
	if bad.Status != http.StatusUnprocessableEntity {
		t.Fatalf("refused limit: %d", bad.Status)
	}
	mustContain(t, bad, fmt.Sprintf("Limite di Servizio numero %03d non salvato", n-1), "Servizi precedenti")
	if got := rows(bad); got != n-adminServicesPageSize {
		t.Fatalf("the refused change came back on a page of %d services, want the second (%d)", got, n-adminServicesPageSize)
	}
	// Its language switch goes back to the list's page, not to the form's
	// address (which answers only POST: switching language got a 405).
	req, _ := http.NewRequest("POST", e.Srv.URL+limits, strings.NewReader(url.Values{"requests": {"-1"}, "window": {"5"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", e.Srv.URL+"/admin/services?page=2&q=numero")
	mustContain(t, pa.do(req), `name="next" value="/admin/services?page=2&q=numero"`)
	ok := pa.post(limits, url.Values{"requests": {"10"}, "window": {"5"}})
	if ok.Status != http.StatusSeeOther || ok.Location != "/admin/services?page=2&q=numero" {
		t.Fatalf("saved limit: %d to %q, want 303 to the second page", ok.Status, ok.Location)
	}
}

// The console's list of institutions is paged: it stopped at the first 500.
func TestAdminInstitutionsArePaged(t *testing.T) {
	e := newTestEnv(t)
	const n = adminInstitutionsPageSize + 4
	for i := 0; i < n; i++ {
		e.DB.W.MustExec(`INSERT INTO institutions (name, fiscal_code, pec, created_at) VALUES (?, ?, 'pec@example.it', ?)`,
			fmt.Sprintf("Ente numero %03d", i), fmt.Sprintf("%011d", 70000000000+i), time.Now().UTC())
	}
	pa := e.platformAdmin("root@sportello.example.it")
	rows := func(r resp) int { return strings.Count(r.Body, `/suspend" class="inline"`) }
	first := pa.get("/admin/institutions?q=numero")
	if got := rows(first); got != adminInstitutionsPageSize {
		t.Fatalf("first page lists %d institutions, want %d", got, adminInstitutionsPageSize)
	}
	mustContain(t, first, `href="/admin/institutions?page=2&q=numero"`, "Enti successivi")
	second := pa.get("/admin/institutions?page=2&q=numero")
	if got := rows(second); got != n-adminInstitutionsPageSize {
		t.Fatalf("second page lists %d institutions, want %d", got, n-adminInstitutionsPageSize)
	}
	mustContain(t, second, fmt.Sprintf("Ente numero %03d", n-1), `href="/admin/institutions?q=numero"`, "Enti precedenti")
	mustNotContain(t, second, "Enti successivi")
}
