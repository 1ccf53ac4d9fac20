// Package dbtest opens a real, migrated SQLite database in a test's temp dir.
package dbtest

import (
	"context"
	"path/filepath"
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
