// Package demo creates demo data for trying the API locally and for
// integration scripts: one institution, a service still in test mode and
// an approved one, with test recipients that have citizen profiles. It
// never runs unless asked (sportello seed-demo).
package demo

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway/keys"
	"sportello/messaging/fiscalcode"
)

// Fixed identities, so running the seed twice finds what it made.
const (
	InstitutionFiscalCode = "80000000002" // valid check digit (checked in init)
	TestServiceID         = "svcDemoTest000000000001"
	LiveServiceID         = "svcDemoLive000000000001"
)

// TestFiscalCodes are the demo services' authorized test recipients.
var TestFiscalCodes = []string{
	withCheck("RSSMRA85T10A562"),
	withCheck("BNCNNA90A41H501"),
}

func withCheck(first15 string) string { return first15 + string(fiscalcode.CheckChar(first15)) }

func init() {
	if !fiscalcode.ValidOrganization(InstitutionFiscalCode) {
		panic("demo: institution fiscal code has a wrong check digit")
	}
}

// Service is one demo service as printed by seed-demo.
type Service struct {
	ID              string   `json:"id"`
	Key             string   `json:"key"`
	TestFiscalCodes []string `json:"test_fiscal_codes,omitempty"`
	// InternalID is the database id, for callers in this process.
	InternalID int64 `json:"-"`
}

// Result is what seed-demo prints.
type Result struct {
	TestService Service `json:"test_service"`
	LiveService Service `json:"live_service"`
}

// Seed creates the demo data if missing and regenerates the primary key of
// each service (test key for the test-mode service, live key for the
// approved one), returning the new keys. Callers running next to a live
// gateway must invalidate the two services afterwards.
func Seed(ctx context.Context, d *db.DB) (Result, error) {
	var out Result
	now := time.Now().UTC()
	err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		inst, err := institution(ctx, tx, now)
		if err != nil {
			return err
		}
		recipients, _ := json.Marshal(TestFiscalCodes)
		testID, err := service(ctx, tx, inst, TestServiceID, "Servizio di prova (demo)", string(recipients), false, now)
		if err != nil {
			return err
		}
		liveID, err := service(ctx, tx, inst, LiveServiceID, "Tributi e pagamenti (demo)", string(recipients), true, now)
		if err != nil {
			return err
		}
		if err := profiles(ctx, tx, now); err != nil {
			return err
		}
		tk, err := keys.Issue(ctx, tx, testID, keys.Test, keys.Primary, 0)
		if err != nil {
			return err
		}
		lk, err := keys.Issue(ctx, tx, liveID, keys.Live, keys.Primary, 0)
		if err != nil {
			return err
		}
		out = Result{
			TestService: Service{ID: TestServiceID, Key: tk, TestFiscalCodes: TestFiscalCodes, InternalID: testID},
			LiveService: Service{ID: LiveServiceID, Key: lk, InternalID: liveID},
		}
		return db.Audit(ctx, tx, db.AuditEvent{At: now, Actor: "system", InstitutionID: &inst, Action: "demo.seed",
			Target: TestServiceID + "," + LiveServiceID, Detail: "primary keys regenerated"})
	})
	if err != nil {
		return Result{}, fmt.Errorf("demo: seed: %w", err)
	}
	return out, nil
}

func institution(ctx context.Context, tx *sqlx.Tx, now time.Time) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `SELECT id FROM institutions WHERE fiscal_code = ?`, InstitutionFiscalCode)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO institutions (name, fiscal_code, pec, created_at) VALUES (?, ?, ?, ?)`,
		"Comune di Esempio (demo)", InstitutionFiscalCode, "protocollo@pec.comune-esempio.invalid", now)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// service finds or creates a demo service; approved ones get an approved
// version in force, test keys always, live keys when approved.
func service(ctx context.Context, tx *sqlx.Tx, inst int64, publicID, name, recipients string, approved bool, now time.Time) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `SELECT id FROM services WHERE public_id = ? AND institution_id = ?`, publicID, inst)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO services (public_id, institution_id, name, authorized_recipients, max_payment_cents, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, publicID, inst, name, recipients, 100000, now)
	if err != nil {
		return 0, err
	}
	id, _ = res.LastInsertId()
	card, _ := json.Marshal(map[string]any{
		"name": name, "department_name": "Ufficio tributi", "scope": "LOCAL", "topic": "taxes",
		"description": "Servizio dimostrativo per provare l'API di Sportello in locale.",
		"privacy_url": "https://comune-esempio.invalid/privacy", "email": "tributi@comune-esempio.invalid",
		"require_secure_channels": false, "max_payment_cents": 100000,
	})
	state := "draft"
	if approved {
		state = "approved"
	}
	res, err = tx.ExecContext(ctx, `INSERT INTO service_versions (service_id, version_no, state, card, created_at, updated_at, decided_at, decision_reason)
		VALUES (?, 1, ?, ?, ?, ?, ?, ?)`, id, state, string(card), now, now, decidedAt(approved, now), "")
	if err != nil {
		return 0, err
	}
	v, _ := res.LastInsertId()
	col := "working_version_id"
	if approved {
		col = "live_version_id"
	}
	if _, err := tx.ExecContext(ctx, `UPDATE services SET `+col+` = ? WHERE id = ?`, v, id); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO service_events (service_id, version_id, at, kind, reason) VALUES (?, ?, ?, ?, ?)`,
		id, v, now, "created", "demo"); err != nil {
		return 0, err
	}
	if _, err := keys.IssuePair(ctx, tx, id, keys.Test, 0); err != nil {
		return 0, err
	}
	if approved {
		if _, err := keys.IssuePair(ctx, tx, id, keys.Live, 0); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func decidedAt(approved bool, now time.Time) any {
	if approved {
		return now
	}
	return nil
}

// profiles gives the test recipients citizen profiles, so profile look-ups
// and deliveries have someone to find.
func profiles(ctx context.Context, tx *sqlx.Tx, now time.Time) error {
	for _, cf := range TestFiscalCodes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO profiles (fiscal_code, preferred_languages, created_at, updated_at)
			VALUES (?, '["it_IT"]', ?, ?) ON CONFLICT (fiscal_code) DO NOTHING`, cf, now, now); err != nil {
			return err
		}
	}
	return nil
}
