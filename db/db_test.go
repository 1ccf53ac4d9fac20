package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
)

func TestMigrationsApplyOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first, err := d.AppliedMigrations(ctx)
	if err != nil || len(first) == 0 {
		t.Fatalf("applied %v, %v", first, err)
	}
	d.Close()
	d, err = db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	second, _ := d.AppliedMigrations(ctx)
	if len(second) != len(first) {
		t.Fatalf("second start changed migrations: %v -> %v", first, second)
	}
	var mode string
	if err := d.R.Get(&mode, "PRAGMA journal_mode"); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	var fk int
	if err := d.W.Get(&fk, "PRAGMA foreign_keys"); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v", fk, err)
	}
	var sync int
	if err := d.W.Get(&sync, "PRAGMA synchronous"); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d (want 2 = FULL), %v", sync, err)
	}
	// The reader pool cannot write.
	if _, err := d.R.Exec("CREATE TABLE x(a)"); err == nil {
		t.Fatal("reader pool accepted a write")
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	inst := int64(7)
	if err := db.Audit(ctx, d.W, db.AuditEvent{Actor: "a@b.it", InstitutionID: &inst, Action: "member.invite", Target: "c@d.it"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Audit(ctx, d.W, db.AuditEvent{Actor: "x@y.it", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.W.Exec(`UPDATE audit_events SET action = 'x'`); err == nil {
		t.Error("update allowed")
	}
	if _, err := d.W.Exec(`DELETE FROM audit_events`); err == nil {
		t.Error("delete allowed")
	}
	evs, err := d.AuditEvents(ctx, db.AuditFilter{InstitutionID: &inst})
	if err != nil || len(evs) != 1 || evs[0].Action != "member.invite" {
		t.Fatalf("filtered events = %+v, %v", evs, err)
	}
	evs, _ = d.AuditEvents(ctx, db.AuditFilter{Action: "mem"})
	if len(evs) != 1 {
		t.Fatalf("action prefix filter: %d events", len(evs))
	}
	evs, _ = d.AuditEvents(ctx, db.AuditFilter{Action: "%"})
	if len(evs) != 0 {
		t.Fatalf("LIKE wildcard not escaped: %d events", len(evs))
	}
}

// WriteTxNoSync commits (or rolls back) like WriteTx and always hands the
// writer back with synchronous=FULL, so durable writers that follow are not
// silently relaxed.
func TestWriteTxNoSyncRestoresFullSync(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.W.MustExec(`CREATE TABLE t (v INTEGER)`)
	sync := func() int {
		var n int
		if err := d.W.Get(&n, `PRAGMA synchronous`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := sync(); got != 2 {
		t.Fatalf("writer starts with synchronous=%d, want 2 (FULL)", got)
	}
	var inside int
	err = d.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error {
		if err := tx.Get(&inside, `PRAGMA synchronous`); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO t VALUES (1)`)
		return err
	})
	if err != nil || inside != 1 {
		t.Fatalf("err %v, synchronous inside %d, want 1 (NORMAL)", err, inside)
	}
	boom := errors.New("boom")
	if err := d.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`INSERT INTO t VALUES (2)`); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing fn: %v", err)
	}
	if got := sync(); got != 2 {
		t.Fatalf("writer left with synchronous=%d, want 2 (FULL)", got)
	}
	var vals []int
	if err := d.R.Select(&vals, `SELECT v FROM t`); err != nil || len(vals) != 1 || vals[0] != 1 {
		t.Fatalf("rows %v (%v): want only the committed 1", vals, err)
	}
}

// A panic inside a write transaction (a bug in a handler, which net/http
// recovers, or in a supervised loop) must not leave the transaction open:
// the writer is one connection, and every later write would wait for it
// forever. Both ways in are checked: WriteTx and WriteTxNoSync.
func TestPanicInsideAWriteTransactionReleasesTheWriter(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end, not deferred: after a failure Close would wait
	// for the stuck writer too and hide the message.
	d.W.MustExec(`CREATE TABLE t (v TEXT)`)
	for name, write := range map[string]func(context.Context, func(*sqlx.Tx) error) error{
		"WriteTx": d.WriteTx, "WriteTxNoSync": d.WriteTxNoSync,
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("%s: the panic did not reach the caller", name)
				}
			}()
			_ = write(ctx, func(tx *sqlx.Tx) error {
				tx.MustExec(`INSERT INTO t VALUES ('lost')`)
				panic("bug")
			})
		}()
		done := make(chan error, 1)
		go func() {
			done <- d.WriteTx(ctx, func(tx *sqlx.Tx) error { _, err := tx.Exec(`INSERT INTO t VALUES ('kept')`); return err })
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: next write: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the next write still waits after 10 s: the panicked transaction holds the writer", name)
		}
	}
	var lost, kept, sync int
	_ = d.R.Get(&lost, `SELECT COUNT(*) FROM t WHERE v = 'lost'`)
	_ = d.R.Get(&kept, `SELECT COUNT(*) FROM t WHERE v = 'kept'`)
	if lost != 0 || kept != 2 {
		t.Fatalf("rows of the panicked transactions %d (want 0), later writes %d (want 2)", lost, kept)
	}
	if err := d.W.Get(&sync, `PRAGMA synchronous`); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d (%v) after a panic in WriteTxNoSync, want 2 (FULL)", sync, err)
	}
	d.Close()
}

// The database and its WAL are readable by their owner only: they hold
// password hashes, fiscal codes and messages. A file left 0644 by an
// earlier version is tightened when opened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sportello.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.W.ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil { // the WAL is written
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s: mode %o, want no access for group and others", filepath.Base(p), perm)
		}
	}
	d.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	// A WAL left behind readable by everyone (a crash of an earlier
	// version) is tightened too.
	if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path+"-wal", 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st, err := os.Stat(path + "-wal"); err == nil && st.Mode().Perm()&0o007 != 0 {
		t.Fatalf("left-behind WAL: mode %o", st.Mode().Perm())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("reopened 0644 file: mode %o, want 640 (others' access removed, the group's kept)", st.Mode().Perm())
	}
}

// An unopenable database file is named once in the error: os.OpenFile's
// error already says "open PATH: ...", and wrapping it again printed
// "open PATH: open PATH: permission denied" at start.
func TestOpenErrorNamesTheFileOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sportello.db")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	_, err := db.Open(context.Background(), path)
	if err == nil {
		t.Fatal("opened a directory as the database")
	}
	if n := strings.Count(err.Error(), path); n != 1 {
		t.Fatalf("error names the file %d times: %v", n, err)
	}
}
