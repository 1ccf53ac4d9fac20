// Package db opens Sportello's SQLite database and applies its migrations.
//
// SQLite allows one writer at a time, so the database is opened twice: a
// writer pool of exactly one connection (every write transaction queues there
// instead of failing with SQLITE_BUSY) and a reader pool that WAL mode lets
// run alongside the writer. synchronous=FULL makes every commit fsync the WAL,
// so a committed row survives a power cut: the gateway's 201 depends on it.
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// BusyTimeout is how long a statement waits for a lock another process
// holds before it fails with "database is locked".
var BusyTimeout = 10 * time.Second

// ErrNotFound is returned by stores when a row does not exist (or is not
// visible to the caller, which callers must not distinguish).
var ErrNotFound = errors.New("not found")

// DB holds the writer and reader pools of one SQLite file.
type DB struct {
	W    *sqlx.DB // exactly one connection: all writes go here
	R    *sqlx.DB // read-only pool
	Path string
}

// Open opens (creating if needed) the database file at path and applies
// pending migrations. A database a newer Sportello migrated is refused
// (ErrSchemaAhead).
func Open(ctx context.Context, path string) (*DB, error) { return openUpTo(ctx, path, "") }

// OpenCurrent opens the database at path without migrating it, for a
// command run beside a running server: a newer binary must not change the
// schema under an older server still using it. A database this binary
// would migrate is refused (ErrSchemaBehind), as is one a newer Sportello
// migrated (ErrSchemaAhead).
func OpenCurrent(ctx context.Context, path string) (*DB, error) {
	return openUpTo(ctx, path, noMigrations)
}

// noMigrations as openUpTo's last: check the schema, apply nothing.
const noMigrations = "-"

// privateFile makes sure the database file exists readable by its owner
// only (it holds password hashes, fiscal codes and messages): SQLite
// would create it with the umask's 0644, and it creates the -wal and -shm
// files with the database file's permissions. Files left readable by
// everyone by an earlier version lose the access of "others" (a group an
// operator gave access on purpose, for backups, keeps it). A file this
// process does not own is left as it is: that is its owner's choice, and
// not a reason to refuse to start.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err // an *fs.PathError: it already says "open PATH: ..."
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := st.Mode().Perm(); perm&0o007 != 0 {
			if err := os.Chmod(p, perm&^0o007); err != nil && !errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("restrict %s: %w", p, err)
			}
		}
	}
	return nil
}

// openUpTo is Open applying migrations only up to version last ("" = all).
func openUpTo(ctx context.Context, path, last string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := privateFile(path); err != nil {
		return nil, err
	}
	common := url.Values{}
	common.Set("_foreign_keys", "on")
	common.Set("_busy_timeout", strconv.Itoa(int(BusyTimeout/time.Millisecond)))
	common.Set("_journal_mode", "WAL")
	common.Set("_synchronous", "FULL")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = v
	}
	// BEGIN IMMEDIATE: take the write lock at the start of a transaction so a
	// read-then-write transaction never fails half way on lock upgrade.
	wq.Set("_txlock", "immediate")
	w, err := sqlx.Open("sqlite3", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = v
	}
	rq.Set("_query_only", "1")
	r, err := sqlx.Open("sqlite3", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, err
	}
	n := max(4, runtime.NumCPU()*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)

	d := &DB{W: w, R: r, Path: path}
	if err := d.checkSchema(ctx, last == noMigrations); err != nil {
		d.Close()
		return nil, err
	}
	if last != noMigrations {
		if err := d.migrateUpTo(ctx, last); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// checkSchema refuses a database migrated by a newer binary and, when
// current is set, one this binary would still migrate.
func (d *DB) checkSchema(ctx context.Context, current bool) error {
	pending, unknown, err := d.schemaDiff(ctx)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s: %w (it has migration %s, this one knows up to %s): run the newer version, or restore a backup made before the upgrade",
			d.Path, ErrSchemaAhead, unknown[len(unknown)-1], lastKnown())
	}
	if current && len(pending) > 0 {
		return fmt.Errorf("%s: %w (it lacks migration %s): a server is running an older version on it; stop that server and start this version, which migrates the database, then run the command again",
			d.Path, ErrSchemaBehind, strings.Join(pending, ", "))
	}
	return nil
}

// lastKnown is the newest migration this binary has.
func lastKnown() string {
	v, err := migrationVersions()
	if err != nil || len(v) == 0 {
		return "none"
	}
	return v[len(v)-1]
}

// Close checkpoints the WAL and closes both pools.
func (d *DB) Close() error {
	errR := d.R.Close()
	// A clean checkpoint leaves a small WAL for the next start; failure is
	// harmless (the WAL is replayed on open).
	_, _ = d.W.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	errW := d.W.Close()
	return errors.Join(errR, errW)
}

// WriteTx runs fn in a write transaction on the single writer connection and
// commits when fn returns nil.
func (d *DB) WriteTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return runTx(ctx, d.W, fn)
}

// WriteTxNoSync is WriteTx committing with synchronous=NORMAL: the commit
// reaches the WAL (and survives a crash of the process) but is not fsynced,
// so it is lost only if the machine itself goes down before the next fsync
// (any FULL commit or checkpoint). It is for work that is safe to redo, such
// as the delivery pipeline's outcomes (every effect is idempotent): it then
// holds the single writer for a write, not for a disk flush, and leaves
// more of it to the gateway's durable commits.
func (d *DB) WriteTxNoSync(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return d.NoSyncConn(ctx, func(conn *sqlx.Conn) error { return runTx(ctx, conn, fn) })
}

// NoSyncConn lends fn the writer connection with synchronous=NORMAL and puts
// it back with synchronous=FULL, so nobody after fn is silently relaxed; a
// connection that cannot be restored is discarded. Commits fn makes are not
// fsynced: fn must either not need that (WriteTxNoSync) or fsync the WAL
// itself before it reports them durable (the send pipeline).
func (d *DB) NoSyncConn(ctx context.Context, fn func(conn *sqlx.Conn) error) (err error) {
	conn, err := d.W.Connx(ctx)
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("%w: %w", ErrSyncNotRestored, rerr))
		}
	}()
	return fn(conn)
}

// ErrSyncNotRestored reports that NoSyncConn could not put the writer back
// to synchronous=FULL (the connection was discarded instead).
var ErrSyncNotRestored = errors.New("restore synchronous=FULL")

// txBeginner is the writer pool or one connection of it.
type txBeginner interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

func runTx(ctx context.Context, b txBeginner, fn func(tx *sqlx.Tx) error) error {
	tx, err := b.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// A panic in fn (a bug; net/http and the supervised loops recover
	// it) must not leave the transaction open: it would hold the only
	// writer connection, and every later write would wait forever.
	defer func() {
		if v := recover(); v != nil {
			_ = tx.Rollback()
			panic(v)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// NotFound maps sql.ErrNoRows to ErrNotFound and leaves other errors alone.
func NotFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
