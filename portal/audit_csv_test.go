package portal

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func parseCSV(t *testing.T, r resp) [][]string {
	t.Helper()
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV export: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	if !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
		t.Fatal("CSV export is not offered as a download")
	}
	rows, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestAuditCSVExport(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "anna@comune.example.it")
	other, _ := e.registerInst(2, "bruno@comune-b.example.it")
	e.inviteAndJoin(admin, inst, "marco@comune.example.it", "operator")
	// A failed login whose "e-mail" is a spreadsheet formula.
	e.newClient().post("/login", url.Values{"email": {`=HYPERLINK("http://evil.example")`}, "password": {"x"}})

	base := fmt.Sprintf("/i/%d/audit", inst)
	mustContain(t, admin.get(base+"?action=member"), fmt.Sprintf(`href="%s.csv?action=member"`, base))
	rows := parseCSV(t, admin.get(base+".csv"))
	if got := strings.Join(rows[0], ","); got != "id,time_utc,actor,institution_id,action,target,detail,client_ip" {
		t.Fatalf("header %q", got)
	}
	actions := map[string]bool{}
	for _, row := range rows[1:] {
		if row[3] != fmt.Sprint(inst) {
			t.Fatalf("another institution's event in the export: %v", row)
		}
		actions[row[4]] = true
	}
	if !actions["institution.register"] || !actions["member.invite"] || !actions["member.join"] {
		t.Fatalf("actions %v", actions)
	}
	// Filters apply to the export as on the page.
	for _, row := range parseCSV(t, admin.get(base+".csv?action=member.invite"))[1:] {
		if row[4] != "member.invite" {
			t.Fatalf("filtered export has %v", row)
		}
	}
	// Platform admins export everything; formulas stay text.
	pa := e.platformAdmin("root@sportello.example.it")
	found := false
	for _, row := range parseCSV(t, pa.get("/admin/audit.csv?action=login.failed"))[1:] {
		if strings.Contains(row[2], "HYPERLINK") {
			found = true
			if !strings.HasPrefix(row[2], "'=") {
				t.Fatalf("formula not defused: %q", row[2])
			}
		}
	}
	if !found {
		t.Fatal("the failed login is not in the platform export")
	}
	// Other institutions and operators cannot export.
	if r := other.get(base + ".csv"); r.Status != http.StatusNotFound {
		t.Fatalf("other institution's admin: %d", r.Status)
	}
	op := e.login("marco@comune.example.it", testPassword)
	if r := op.get(base + ".csv"); r.Status != http.StatusForbidden {
		t.Fatalf("operator: %d", r.Status)
	}
	if r := other.get("/admin/audit.csv"); r.Status != http.StatusForbidden {
		t.Fatalf("institution admin on the platform export: %d", r.Status)
	}
}

// An Italian spreadsheet splits the file on ";": no part of any line may
// then start a formula, whatever was typed in a logged field.
func TestAuditCSVDefusesFormulasForSemicolonSpreadsheets(t *testing.T) {
	e := newTestEnv(t)
	e.App.throttle.sleep = func(time.Duration) {}
	typed := []string{`;=1+1`, `Anna; @SUM(A1)`, ` ;"=HYPERLINK(""http://evil.example"")`, `a;;+1`, `x;` + "\t=1", `=2+2`}
	for _, s := range typed {
		e.newClient().post("/login", url.Values{"email": {s}, "password": {"x"}})
	}
	pa := e.platformAdmin("root@sportello.example.it")
	r := pa.get("/admin/audit.csv?action=login.failed")
	rows := parseCSV(t, r)
	if len(rows) != len(typed)+1 {
		t.Fatalf("%d rows, want %d failed logins", len(rows)-1, len(typed))
	}
	for _, line := range strings.Split(strings.TrimSpace(r.Body), "\n") {
		for _, cell := range strings.Split(line, ";") {
			if c := strings.TrimLeft(cell, ` "`); c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
				t.Errorf("a ';'-separated cell starts a formula: %q (line %q)", cell, line)
			}
		}
	}
	// Read with "," the text is what was typed, with a quote before each
	// formula start.
	found := map[string]bool{}
	for _, row := range rows[1:] {
		found[row[2]] = true
	}
	for _, want := range []string{`;'=1+1`, `Anna;' @SUM(A1)`, `'=2+2`} {
		if !found[want] {
			t.Errorf("actor %q not in the export: %v", want, found)
		}
	}
}

// The export holds every matching event, not one page:
// the store caps a single read at 500 rows (100 when asked for more), so an
// export of a year's log came out with its newest 100 lines. It is read in
// keyset chunks, each written out before the next is read.
func TestAuditCSVExportHasEveryEventNotOnePage(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "anna@comune.example.it")
	const n = 1234
	tx := e.DB.W.MustBegin()
	for i := 0; i < n; i++ {
		if _, err := tx.Exec(`INSERT INTO audit_events (at, actor, institution_id, action, target) VALUES (?, 'anna@comune.example.it', ?, 'service.card', ?)`,
			time.Now().UTC(), inst, fmt.Sprintf("svc%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rows := parseCSV(t, admin.get(fmt.Sprintf("/i/%d/audit.csv?action=service.card", inst)))
	if got := len(rows) - 1; got != n {
		t.Fatalf("export has %d events, want %d", got, n)
	}
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		if seen[row[0]] {
			t.Fatalf("event %s twice", row[0])
		}
		seen[row[0]] = true
	}
	if all := len(parseCSV(t, admin.get(fmt.Sprintf("/i/%d/audit.csv", inst)))) - 1; all <= n {
		t.Fatalf("unfiltered export has %d events, want more than %d", all, n)
	}
}

// An export is the whole matching log, however long: it stopped at
// 100,000 events without a word, and an archive missing its oldest
// events looks complete.
func TestAuditCSVExportHasNoRowCap(t *testing.T) {
	e := newTestEnv(t)
	const n = 100_050
	if _, err := e.DB.W.Exec(`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
		INSERT INTO audit_events (at, actor, action, target) SELECT ?, 'cron', 'bulk.event', 'x' || i FROM k`, n, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	pa := e.platformAdmin("root@sportello.example.it")
	r := pa.get("/admin/audit.csv?action=bulk.event")
	if got := strings.Count(r.Body, ",bulk.event,"); got != n {
		t.Fatalf("export has %d events, want %d", got, n)
	}
	if !strings.Contains(r.Body, ",x1,") {
		t.Fatal("the oldest event is missing")
	}
}
