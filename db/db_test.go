package db_test

import (
	"context"
	"path/filepath"
	"testing"

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
