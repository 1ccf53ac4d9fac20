package keys

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db/dbtest"
)

func TestGenerateShapeAndUniqueness(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		k := Generate(Live)
		if !strings.HasPrefix(k, "sp_live_") || !LooksLikeKey(k) || seen[k] {
			t.Fatalf("bad or repeated key %q", k)
		}
		seen[k] = true
	}
	if LooksLikeKey("sp_test_short") || LooksLikeKey(strings.Repeat("x", 51)) {
		t.Fatal("shape check too lax")
	}
	k := Generate(Test)
	if d := Display(k); !strings.HasPrefix(k, strings.TrimSuffix(d, "…")) || len(d) > 16 {
		t.Fatalf("display %q", d)
	}
}

func TestIssueRotateRevoke(t *testing.T) {
	d := dbtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	d.W.MustExec(`INSERT INTO institutions (id, name, fiscal_code, pec, created_at) VALUES (1, 'Ente', '00000000000', 'p@pec.it', ?)`, now)
	d.W.MustExec(`INSERT INTO services (id, public_id, institution_id, name, created_at) VALUES (7, 'svc7', 1, 'S', ?)`, now)
	var pair Pair
	if err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		pair, err = IssuePair(ctx, tx, 7, Test, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var stored []string
	_ = d.R.Select(&stored, `SELECT key_hash FROM api_keys`)
	for _, h := range stored {
		if h == pair.Primary || h == pair.Secondary || strings.Contains(h, "sp_") {
			t.Fatal("a key is stored in clear")
		}
	}
	if stored[0] != Hash(pair.Primary) && stored[1] != Hash(pair.Primary) {
		t.Fatal("hash of the primary key not stored")
	}
	// Rotating the primary keeps the secondary and revokes the old primary.
	var newPrimary string
	_ = d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		newPrimary, err = Issue(ctx, tx, 7, Test, Primary, 0)
		return err
	})
	act, err := Active(ctx, d.R, 7)
	if err != nil || len(act) != 2 {
		t.Fatalf("active keys %v %v", act, err)
	}
	var revoked int
	_ = d.R.Get(&revoked, `SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL AND key_hash = ?`, Hash(pair.Primary))
	if revoked != 1 || newPrimary == pair.Primary {
		t.Fatal("old primary not revoked")
	}
	_ = d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		ok, err := Revoke(ctx, tx, 7, Test, Secondary, time.Now())
		if !ok || err != nil {
			t.Errorf("revoke: %v %v", ok, err)
		}
		return err
	})
	if act, _ := Active(ctx, d.R, 7); len(act) != 1 || act[0].Slot != Primary {
		t.Fatalf("after revoke: %+v", act)
	}
}

// A suspended key stays the same active key, with its reason; suspending
// it again, or reactivating an active one, changes nothing; another
// service's key cannot be reached through this one's.
func TestSuspendAndReactivate(t *testing.T) {
	d := dbtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	d.W.MustExec(`INSERT INTO institutions (id, name, fiscal_code, pec, created_at) VALUES (1, 'Ente', '00000000000', 'p@pec.it', ?)`, now)
	d.W.MustExec(`INSERT INTO services (id, public_id, institution_id, name, created_at) VALUES (7, 'svc7', 1, 'S', ?), (8, 'svc8', 1, 'T', ?)`, now, now)
	tx := func(f func(tx *sqlx.Tx) error) {
		t.Helper()
		if err := d.WriteTx(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	tx(func(tx *sqlx.Tx) error { _, err := IssuePair(ctx, tx, 7, Test, 0); return err })
	act, _ := Active(ctx, d.R, 7)
	id := act[0].ID
	var k *Info
	tx(func(tx *sqlx.Tx) (err error) { k, err = Suspend(ctx, tx, 8, id, "abuso", now); return })
	if k != nil {
		t.Fatal("suspended through another service")
	}
	tx(func(tx *sqlx.Tx) (err error) {
		k, err = Suspend(ctx, tx, 7, id, "invii massivi non richiesti", now)
		return
	})
	if k == nil || k.ID != id || k.SuspendedAt == nil || k.SuspendedReason != "invii massivi non richiesti" || k.DisplayPrefix != act[0].DisplayPrefix {
		t.Fatalf("suspend: %+v", k)
	}
	tx(func(tx *sqlx.Tx) (err error) {
		k, err = Suspend(ctx, tx, 7, id, "di nuovo", now.Add(time.Hour))
		return
	})
	if k != nil {
		t.Fatal("suspended twice")
	}
	act, _ = Active(ctx, d.R, 7)
	if len(act) != 2 || act[0].SuspendedAt == nil || !act[0].SuspendedAt.Equal(now) || act[1].SuspendedAt != nil {
		t.Fatalf("active after suspension: %+v", act)
	}
	tx(func(tx *sqlx.Tx) error {
		s, err := SlotSuspended(ctx, tx, 7, act[0].Mode, act[0].Slot)
		if !s || err != nil {
			t.Errorf("slot suspended: %v %v", s, err)
		}
		return err
	})
	tx(func(tx *sqlx.Tx) (err error) { k, err = Reactivate(ctx, tx, 7, id); return })
	if k == nil || k.SuspendedAt != nil || k.SuspendedReason != "" {
		t.Fatalf("reactivate: %+v", k)
	}
	tx(func(tx *sqlx.Tx) (err error) { k, err = Reactivate(ctx, tx, 7, id); return })
	if k != nil {
		t.Fatal("reactivated an active key")
	}
}
