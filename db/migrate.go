package db

import (
	"context"
	"embed"
	"errors"
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
	versions, err := migrationVersions()
	if err != nil {
		return err
	}
	for _, version := range versions {
		body, err := migrationFS.ReadFile("migrations/" + version + ".sql")
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

// migrationVersions lists the embedded migrations' versions in order.
func migrationVersions() ([]string, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for i, name := range names {
		names[i] = strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
	}
	return names, nil
}

// schemaDiff compares the database's recorded migrations with this
// binary's: pending are the ones it would apply, unknown the ones a newer
// Sportello applied. A database without schema_migrations has every
// migration pending.
func (d *DB) schemaDiff(ctx context.Context) (pending, unknown []string, err error) {
	versions, err := migrationVersions()
	if err != nil {
		return nil, nil, err
	}
	var n int
	if err := d.W.GetContext(ctx, &n, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`); err != nil {
		return nil, nil, err
	}
	var applied []string
	if n > 0 {
		if err := d.W.SelectContext(ctx, &applied, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
			return nil, nil, err
		}
	}
	known := map[string]bool{}
	for _, v := range versions {
		known[v] = true
	}
	done := map[string]bool{}
	for _, v := range applied {
		done[v] = true
		if !known[v] {
			unknown = append(unknown, v)
		}
	}
	for _, v := range versions {
		if !done[v] {
			pending = append(pending, v)
		}
	}
	return pending, unknown, nil
}

// ErrSchemaBehind is OpenCurrent's answer for a database this binary
// would migrate.
var ErrSchemaBehind = errors.New("the database is at an older schema than this Sportello")

// ErrSchemaAhead is the answer of Open and OpenCurrent for a database a
// newer Sportello has migrated: this binary does not know its tables, and
// writing to them could break what the newer one stored.
var ErrSchemaAhead = errors.New("the database was upgraded by a newer Sportello")
