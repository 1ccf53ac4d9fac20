package db

import (
	"context"
	"path/filepath"
	"testing"
)

// Migration 0031 gives back the blocks of citizens who switched from
// LEGACY to AUTO before the switch migrated them: a preference with the
// blocked channels off for each blocked service, at version 1 only (one
// change, LEGACY → AUTO), keeping any choice the citizen made since and
// surviving a profile whose blocks are not valid JSON.
func TestLegacyBlocksMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	old, err := openUpTo(ctx, path, "0027_idempotency_per_mode")
	if err != nil {
		t.Fatal(err)
	}
	profile := func(fc, blocked, mode string, version int) string {
		return `INSERT INTO profiles (fiscal_code, blocked_inbox_or_channels, preferences_mode, preferences_version, created_at, updated_at)
			VALUES ('` + fc + `', '` + blocked + `', '` + mode + `', ` + string(rune('0'+version)) + `, '2026-01-01', '2026-01-01')`
	}
	for _, q := range []string{
		`INSERT INTO institutions (id, name, fiscal_code, pec, created_at) VALUES (1, 'Comune', '01234567890', 'c@pec.it', '2026-01-01')`,
		`INSERT INTO services (id, public_id, institution_id, name, created_at) VALUES (1, 'svc1', 1, 'TARI', '2026-01-01'), (2, 'svc2', 1, 'Anagrafe', '2026-01-01')`,
		profile("AUTOAUTOAUTO0001", `{"svc1":["INBOX","EMAIL","WEBHOOK"],"svc2":["EMAIL"],"gone":["INBOX"]}`, "AUTO", 1),
		profile("AUTOCHOSE0000002", `{"svc1":["INBOX"]}`, "AUTO", 1),
		profile("AUTOLATER0000003", `{"svc1":["INBOX"]}`, "AUTO", 3),
		profile("MANUAL0000000004", `{"svc1":["INBOX"]}`, "MANUAL", 1),
		profile("LEGACY0000000005", `{"svc1":["INBOX"]}`, "LEGACY", 0),
		profile("AUTOBROKEN000006", `not json`, "AUTO", 1),
		`INSERT INTO service_preferences (fiscal_code, service_id, is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version, updated_at)
			VALUES ('AUTOCHOSE0000002', 1, 1, 1, 1, 1, '2026-01-02')`,
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
	type pref struct {
		FiscalCode string `db:"fiscal_code"`
		ServiceID  int64  `db:"service_id"`
		Inbox      bool   `db:"is_inbox_enabled"`
		Email      bool   `db:"is_email_enabled"`
		Webhook    bool   `db:"is_webhook_enabled"`
		Version    int    `db:"settings_version"`
	}
	var got []pref
	if err := d.R.Select(&got, `SELECT fiscal_code, service_id, is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version
		FROM service_preferences ORDER BY fiscal_code, service_id`); err != nil {
		t.Fatal(err)
	}
	want := []pref{
		{"AUTOAUTOAUTO0001", 1, false, false, false, 1},
		{"AUTOAUTOAUTO0001", 2, true, false, true, 1},
		{"AUTOCHOSE0000002", 1, true, true, true, 1},
	}
	if len(got) != len(want) {
		t.Fatalf("preferences after the upgrade %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("preference %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
