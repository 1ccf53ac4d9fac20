package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateUpTo applies, in file-name order, every embedded migration not
// yet recorded in schema_migrations, each in its own transaction, and
// stops after version last ("" = all; tests use a version to build a
// database as an older release left it).
func (d *DB) migrateUpTo(ctx context.Context, last string) error {
	if _, err := d.W.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		err = d.WriteTx(ctx, func(tx *sqlx.Tx) error {
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", version, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, version, time.Now().UTC())
			return err
		})
		if err != nil {
			return err
		}
		if version == last {
			return nil
		}
	}
	return nil
}

// AppliedMigrations lists the recorded migration versions in order.
func (d *DB) AppliedMigrations(ctx context.Context) ([]string, error) {
	var v []string
	err := d.R.SelectContext(ctx, &v, `SELECT version FROM schema_migrations ORDER BY version`)
	return v, err
}
