// Package dbtest opens a real, migrated SQLite database in a test's temp dir.
package dbtest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"sportello/db"
)

// Open returns a migrated database in t.TempDir(), closed when the test ends.
func Open(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "sportello.db"))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Plan returns SQLite's query plan for q, one step per line ("SCAN
// outbox", "SEARCH m USING INDEX ..."), for tests that pin a hot or
// per-citizen query to its indexes: without statistics the planner may
// choose to scan a large table.
func Plan(t testing.TB, d *db.DB, q string, args ...any) string {
	t.Helper()
	var steps []struct {
		ID, Parent, NotUsed int
		Detail              string
	}
	if err := d.R.Select(&steps, "EXPLAIN QUERY PLAN "+q, args...); err != nil {
		t.Fatalf("query plan: %v", err)
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Detail
	}
	return strings.Join(out, "\n")
}
