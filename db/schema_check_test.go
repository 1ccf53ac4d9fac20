package db

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A command beside a running server opens with OpenCurrent: a database
// this binary would migrate is refused and left as it is, and one at the
// binary's schema opens.
func TestOpenCurrentNeverMigrates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	old, err := openUpTo(ctx, path, "0031_legacy_blocks_to_preferences")
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	_, err = OpenCurrent(ctx, path)
	if !errors.Is(err, ErrSchemaBehind) || !strings.Contains(err.Error(), "0032_service_name_is_the_approved_one") || !strings.Contains(err.Error(), "stop that server") {
		t.Fatalf("OpenCurrent of an older schema: %v", err)
	}
	d, err := openUpTo(ctx, path, "0031_legacy_blocks_to_preferences") // nothing to apply: looks only
	if err != nil {
		t.Fatal(err)
	}
	pending, _, err := d.schemaDiff(ctx)
	d.Close()
	if err != nil || len(pending) == 0 {
		t.Fatalf("OpenCurrent applied migrations: pending %v, %v", pending, err)
	}

	d, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = OpenCurrent(ctx, path)
	if err != nil {
		t.Fatalf("OpenCurrent at the current schema: %v", err)
	}
	d.Close()
}

// A database a newer Sportello migrated is refused by Open and
// OpenCurrent alike, with the versions in the error, and not touched.
func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.W.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ('9001_from_the_future', '2027-01-01')`); err != nil {
		t.Fatal(err)
	}
	d.Close()
	for name, open := range map[string]func(context.Context, string) (*DB, error){"Open": Open, "OpenCurrent": OpenCurrent} {
		_, err := open(ctx, path)
		if !errors.Is(err, ErrSchemaAhead) || !strings.Contains(err.Error(), "9001_from_the_future") || !strings.Contains(err.Error(), lastKnown()) {
			t.Errorf("%s of a newer schema: %v", name, err)
		}
	}
}
