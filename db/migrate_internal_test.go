package db

import (
	"context"
	"path/filepath"
	"testing"
)

// An upgrade keeps every inbox row, with its read and archived flags, when
// migration 0025 rebuilds the inbox in citizen order, and the rebuilt
// table still refuses a second row for a message.
func TestInboxByCitizenMigrationKeepsRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	old, err := openUpTo(ctx, path, "0024_outbox_without_lease")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO institutions (id, name, fiscal_code, pec, created_at) VALUES (1, 'Comune', '01234567890', 'c@pec.it', '2026-01-01')`,
		`INSERT INTO services (id, public_id, institution_id, name, created_at) VALUES (1, 'svc1', 1, 'TARI', '2026-01-01')`,
		`INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, created_at, status)
			VALUES ('m1', 1, 1, 'RSSMRA85T10A562S', 'live', '{}', 3600, '2026-01-01', 'PROCESSED'),
			       ('m2', 1, 1, 'RSSMRA85T10A562S', 'live', '{}', 3600, '2026-01-02', 'PROCESSED'),
			       ('m3', 1, 1, 'BNCNNA90A41H501T', 'live', '{}', 3600, '2026-01-03', 'PROCESSED')`,
		`INSERT INTO inbox (message_id, fiscal_code, service_id, created_at, is_read, is_archived)
			VALUES ('m1', 'RSSMRA85T10A562S', 1, '2026-01-01', 1, 0),
			       ('m2', 'RSSMRA85T10A562S', 1, '2026-01-02', 0, 1),
			       ('m3', 'BNCNNA90A41H501T', 1, '2026-01-03', 0, 0)`,
	} {
		if _, err := old.W.Exec(q); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	old.Close()

	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	type row struct {
		FiscalCode string `db:"fiscal_code"`
		MessageID  string `db:"message_id"`
		Read       bool   `db:"is_read"`
		Archived   bool   `db:"is_archived"`
	}
	var rows []row
	if err := d.R.Select(&rows, `SELECT fiscal_code, message_id, is_read, is_archived FROM inbox`); err != nil {
		t.Fatal(err)
	}
	want := []row{ // in key order: citizen first
		{"BNCNNA90A41H501T", "m3", false, false},
		{"RSSMRA85T10A562S", "m1", true, false},
		{"RSSMRA85T10A562S", "m2", false, true},
	}
	if len(rows) != len(want) {
		t.Fatalf("inbox after upgrade = %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Fatalf("inbox row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	var idx int
	_ = d.R.Get(&idx, `SELECT count(*) FROM sqlite_schema WHERE name = 'inbox_citizen'`)
	if idx != 0 {
		t.Fatal("inbox_citizen index still there: the primary key replaces it")
	}
	if _, err := d.W.Exec(`INSERT INTO inbox (message_id, fiscal_code, service_id, created_at) VALUES ('m1', 'RSSMRA85T10A562S', 1, '2026-01-05')`); err == nil {
		t.Fatal("a second inbox row for m1 was accepted")
	}
}

// Migration 0029 keeps every mail_outbox row and its id, gives each a
// distinct random ref (its Message-ID), and ids are no longer handed out
// again after the newest row is deleted.
func TestMailOutboxRefMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	old, err := openUpTo(ctx, path, "0028_notice_mail_by_message")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.W.Exec(`INSERT INTO mail_outbox (id, message_id, to_addr, subject, body, created_at, sent_at)
		VALUES (1, NULL, 'a@example.it', 'A', 'corpo', '2026-01-01', NULL), (2, 'm1', 'b@example.it', 'B', '', '2026-01-02', '2026-01-02')`); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	old.Close()
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var rows []struct {
		ID   int64  `db:"id"`
		To   string `db:"to_addr"`
		Body string `db:"body"`
		Ref  string `db:"ref"`
	}
	if err := d.R.Select(&rows, `SELECT id, to_addr, body, ref FROM mail_outbox ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != 1 || rows[0].Body != "corpo" || rows[1].ID != 2 || rows[1].To != "b@example.it" ||
		len(rows[0].Ref) != 32 || rows[0].Ref == rows[1].Ref {
		t.Fatalf("rows after the migration: %+v", rows)
	}
	if _, err := d.W.Exec(`DELETE FROM mail_outbox WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	res, err := d.W.Exec(`INSERT INTO mail_outbox (to_addr, subject, body, created_at) VALUES ('c@example.it', 'C', 'x', '2026-01-03')`)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != 3 {
		t.Fatalf("new row got id %d after the newest was deleted, want 3 (not reused)", id)
	}
}

// Migration 0030 ties existing mail to citizens where that is certain: a
// notice through its message, a validation mail through the one profile
// with its address; a shared address and mail to staff stay untied.
func TestMailOutboxByCitizenMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	old, err := openUpTo(ctx, path, "0029_mail_outbox_unique_message_ids")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO institutions (id, name, fiscal_code, pec, created_at) VALUES (1, 'Comune', '01234567890', 'c@pec.it', '2026-01-01')`,
		`INSERT INTO services (id, public_id, institution_id, name, created_at) VALUES (1, 'svc1', 1, 'TARI', '2026-01-01')`,
		`INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, created_at, status)
			VALUES ('m1', 1, 1, 'RSSMRA85T10A562S', 'live', '{}', 3600, '2026-01-01', 'PROCESSED')`,
		`INSERT INTO profiles (fiscal_code, email, created_at, updated_at) VALUES ('RSSMRA85T10A562S', 'mario@example.it', '2026-01-01', '2026-01-01'),
			('BNCNNA90A41H501T', 'casa@example.it', '2026-01-01', '2026-01-01'), ('VRDLGU80A01H501U', 'casa@example.it', '2026-01-01', '2026-01-01')`,
		`INSERT INTO mail_outbox (id, message_id, to_addr, subject, body, created_at) VALUES
			(1, 'm1', 'mario@example.it', 'Nuovo messaggio da TARI', '', '2026-01-01'),
			(2, NULL, 'mario@example.it', 'Conferma il tuo indirizzo e-mail', '', '2026-01-01'),
			(3, NULL, 'casa@example.it', 'Conferma il tuo indirizzo e-mail', 'https://x/citizen/email-validation?token=abc', '2026-01-01'),
			(4, NULL, 'mario@example.it', 'Servizio approvato: TARI', 'testo', '2026-01-01')`,
	} {
		if _, err := old.W.Exec(q); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	old.Close()
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []struct {
		ID int64   `db:"id"`
		FC *string `db:"fiscal_code"`
	}
	if err := d.R.Select(&got, `SELECT id, fiscal_code FROM mail_outbox ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	// Only the notice is tied: who has an address now does not say who a
	// validation mail went to (mario may have had casa@ before).
	want := map[int64]string{1: "RSSMRA85T10A562S", 2: "", 3: "", 4: ""}
	for _, r := range got {
		fc := ""
		if r.FC != nil {
			fc = *r.FC
		}
		if fc != want[r.ID] {
			t.Errorf("mail %d tied to %q, want %q", r.ID, fc, want[r.ID])
		}
	}
}

// Migration 0032 puts an approved service's approved name back where a
// draft's unreviewed name had been written; a service never approved
// keeps its draft name.
func TestServiceNameIsTheApprovedOneMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	old, err := openUpTo(ctx, path, "0031_legacy_blocks_to_preferences")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO institutions (id, name, fiscal_code, pec, created_at) VALUES (1, 'Comune', '01234567890', 'c@pec.it', '2026-01-01')`,
		`INSERT INTO services (id, public_id, institution_id, name, created_at) VALUES (1, 'svc1', 1, 'Paga ora URGENTE', '2026-01-01'), (2, 'svc2', 1, 'Bozza', '2026-01-01')`,
		`INSERT INTO service_versions (id, service_id, version_no, state, card, checklist, created_at, updated_at) VALUES
			(1, 1, 1, 'approved', '{"name":"TARI"}', '{}', '2026-01-01', '2026-01-01'),
			(2, 1, 2, 'draft', '{"name":"Paga ora URGENTE"}', '{}', '2026-01-01', '2026-01-01'),
			(3, 2, 1, 'draft', '{"name":"Bozza"}', '{}', '2026-01-01', '2026-01-01')`,
		`UPDATE services SET live_version_id = 1, working_version_id = 2 WHERE id = 1`,
		`UPDATE services SET working_version_id = 3 WHERE id = 2`,
	} {
		if _, err := old.W.Exec(q); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	old.Close()
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var names []string
	if err := d.R.Select(&names, `SELECT name FROM services ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[0] != "TARI" || names[1] != "Bozza" {
		t.Fatalf("names after the migration %v, want [TARI Bozza]", names)
	}
}
