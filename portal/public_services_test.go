package portal

import (
	"context"
	"fmt"
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
	rows := func(r resp) int { return strings.Count(r.Body, `/limits" class="inline"`) }
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
