package db_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/db/dbtest"
)

// auditLog fills a database with n audit events: 1,000 people taking turns,
// one of them ("heavy@comune.example.it") behind a quarter of the events
// (as a password guessed at all day would be), and rare@comune.example.it
// behind 20, spread over the log.
func auditLog(tb testing.TB, n int) *db.DB {
	tb.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(tb.TempDir(), "s.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	at := time.Now().UTC()
	err = d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (at, actor, institution_id, action, target) VALUES (?, ?, ?, 'login', '')`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i := range n {
			actor := fmt.Sprintf("persona%d@comune%d.example.it", i%1000, i%50)
			switch {
			case i%4 == 0:
				actor = "heavy@comune.example.it"
			case i%(n/20) == 1:
				actor = "rare@comune.example.it"
			}
			if _, err := st.ExecContext(ctx, at, actor, i%50+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkAuditByActor is a page of the console's audit log filtered by
// who acted, on a 200,000-event log: someone with 20 events, someone with
// 50,000, the 20 within one institution's log, and the beginnings of
// addresses matching 20, about 16,000 and about 150,000 events.
func BenchmarkAuditByActor(b *testing.B) {
	d := auditLog(b, 200000)
	inst := int64(2)
	for _, c := range []struct {
		name string
		f    db.AuditFilter
	}{
		{"rare", db.AuditFilter{Actor: "rare@comune.example.it", Limit: 51}},
		{"heavy", db.AuditFilter{Actor: "heavy@comune.example.it", Limit: 51}},
		{"rare_in_institution", db.AuditFilter{Actor: "rare@comune.example.it", InstitutionID: &inst, Limit: 51}},
		{"prefix_rare", db.AuditFilter{Actor: "ra", Limit: 51}},
		{"prefix_111_people", db.AuditFilter{Actor: "persona1", Limit: 51}},
		{"prefix_most", db.AuditFilter{Actor: "p", Limit: 51}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				evs, err := d.AuditEvents(context.Background(), c.f)
				if err != nil || len(evs) == 0 {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
}

// The filter by who acted is an index search, alone or with the other
// filters, and matches how the actor begins whatever its case: the
// "contains" match it replaced read the whole log when few events matched.
func TestAuditByActorIsAnIndexSearch(t *testing.T) {
	d := auditLog(t, 2000)
	inst := int64(2)
	for _, f := range []db.AuditFilter{
		{Actor: "rare@comune.example.it"},
		{Actor: "rare@comune.example.it", InstitutionID: &inst},
		{Actor: "rare@comune.example.it", Action: "login", ActionExact: true},
		{Actor: "rare@comune.example.it", Action: "log"},
		{Actor: "rare@comune.example.it", BeforeID: 500},
	} {
		q, args := db.AuditQuery(f, false)
		plan := dbtest.Plan(t, d, q, args...)
		if !strings.Contains(plan, "SEARCH audit_events USING INDEX audit_events_actor (actor>? AND actor<?)") ||
			strings.Contains(plan, "SCAN") {
			t.Errorf("%+v:\n%s", f, plan)
		}
		// An actor with thousands of events is read newest first, without
		// a sort: through the log, or the other filter's index.
		q, args = db.AuditQuery(f, true)
		if plan := dbtest.Plan(t, d, q, args...); strings.Contains(plan, "audit_events_actor") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("dense %+v:\n%s", f, plan)
		}
	}
	ctx := context.Background()
	for actor, want := range map[string]int{"rare@comune.example.it": 20, " RARE@Comune.example.it ": 20, "rare": 20, "Ra": 20, "comune": 0, "%": 0, "rare@comune.example.it.x": 0} {
		evs, err := d.AuditEvents(ctx, db.AuditFilter{Actor: actor, Limit: 100})
		if err != nil || len(evs) != want {
			t.Errorf("actor %q: %d events, want %d (%v)", actor, len(evs), want, err)
		}
	}
	// Both ways of reading give the same rows, newest first.
	first := int64(1) // heavy's events are in institutions 1, 3, 5…
	for _, f := range []db.AuditFilter{
		{Actor: "heavy@comune.example.it", Limit: 100},
		{Actor: "HEAVY", InstitutionID: &first, Limit: 10},
		{Actor: "persona1", Action: "login", ActionExact: true, Limit: 30},
		{Actor: "rare", BeforeID: 1000, Limit: 100},
	} {
		var ids [2][]int64
		for i, dense := range []bool{false, true} {
			q, args := db.AuditQuery(f, dense)
			if err := d.R.Select(&ids[i], strings.Replace(q, "SELECT id, at,", "SELECT id FROM (SELECT id, at,", 1)+")", args...); err != nil {
				t.Fatal(err)
			}
		}
		if len(ids[0]) == 0 || fmt.Sprint(ids[0]) != fmt.Sprint(ids[1]) || !slices.IsSortedFunc(ids[0], func(a, b int64) int { return int(b - a) }) {
			t.Errorf("%+v: by the actor index %v, through the log %v", f, ids[0], ids[1])
		}
	}
	evs, err := d.AuditEvents(ctx, db.AuditFilter{Actor: "rare@comune.example.it", InstitutionID: &inst, Limit: 100})
	if err != nil || len(evs) != 20 || evs[0].ID < evs[1].ID {
		t.Errorf("in institution 2: %d events, %v", len(evs), err)
	}
}
