// Package keys issues, rotates, revokes and suspends per-service API keys.
//
// A key is 256 random bits behind a prefix that says what it is
// ("sp_test_", "sp_live_"), so secret scanners can spot a leaked one and
// people can tell test from live at a glance. Only the SHA-256 of a key is
// stored, with its first characters kept for display; the key itself is
// shown once, when created.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Mode is test (sandbox quota and recipients) or live (production).
type Mode string

// Slot is primary or secondary: two keys per mode let integrators rotate
// one while the other keeps working.
type Slot string

const (
	Test      Mode = "test"
	Live      Mode = "live"
	Primary   Slot = "primary"
	Secondary Slot = "secondary"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == Test || m == Live }

// Valid reports whether s is a known slot.
func (s Slot) Valid() bool { return s == Primary || s == Secondary }

// displayLen is how much of a key is kept to tell keys apart: the prefix
// and 4 random characters (24 bits: not enough to help guess the rest).
const displayLen = len("sp_test_") + 4

// Generate returns a new random key of the given mode.
func Generate(m Mode) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "sp_" + string(m) + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// Hash is what the database stores and the gateway looks up.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// LooksLikeKey is a cheap shape check before any lookup.
func LooksLikeKey(key string) bool {
	return len(key) == len("sp_test_")+43 && (strings.HasPrefix(key, "sp_test_") || strings.HasPrefix(key, "sp_live_"))
}

// Display returns the visible part of a key ("sp_test_AbCd…").
func Display(key string) string {
	if len(key) < displayLen {
		return key
	}
	return key[:displayLen] + "…"
}

// Pair is a freshly issued primary and secondary key, shown once.
type Pair struct{ Primary, Secondary string }

// IssuePair creates both keys of a mode (a new service's test keys, an
// approved service's live keys), replacing any active ones.
func IssuePair(ctx context.Context, tx *sqlx.Tx, serviceID int64, m Mode, byUser int64) (Pair, error) {
	p, err := Issue(ctx, tx, serviceID, m, Primary, byUser)
	if err != nil {
		return Pair{}, err
	}
	s, err := Issue(ctx, tx, serviceID, m, Secondary, byUser)
	return Pair{Primary: p, Secondary: s}, err
}

// Issue creates a key for one slot, revoking the slot's current key in the
// same transaction (rotation). It returns the key, to show once.
func Issue(ctx context.Context, tx *sqlx.Tx, serviceID int64, m Mode, s Slot, byUser int64) (string, error) {
	if !m.Valid() || !s.Valid() {
		return "", fmt.Errorf("keys: bad mode %q or slot %q", m, s)
	}
	now := time.Now().UTC()
	if _, err := Revoke(ctx, tx, serviceID, m, s, now); err != nil {
		return "", err
	}
	key := Generate(m)
	var by any
	if byUser > 0 {
		by = byUser
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (service_id, mode, slot, key_hash, display_prefix, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, serviceID, m, s, Hash(key), Display(key), now, by); err != nil {
		return "", fmt.Errorf("keys: insert: %w", err)
	}
	return key, nil
}

// Revoke ends the active key of a slot; it reports whether one was active.
func Revoke(ctx context.Context, tx *sqlx.Tx, serviceID int64, m Mode, s Slot, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE service_id = ? AND mode = ? AND slot = ? AND revoked_at IS NULL`,
		now.UTC(), serviceID, m, s)
	if err != nil {
		return false, fmt.Errorf("keys: revoke: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// RevokeAll ends every key of a service (deletion).
func RevokeAll(ctx context.Context, tx *sqlx.Tx, serviceID int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE service_id = ? AND revoked_at IS NULL`, now.UTC(), serviceID)
	return err
}

// Info describes an active key without its secret.
type Info struct {
	ID            int64      `db:"id"`
	Mode          Mode       `db:"mode"`
	Slot          Slot       `db:"slot"`
	DisplayPrefix string     `db:"display_prefix"`
	CreatedAt     time.Time  `db:"created_at"`
	LastUsedAt    *time.Time `db:"last_used_at"`
	// SuspendedAt is set while a platform admin holds the key: it is
	// refused (403, not 401) until reactivated, and stays the same key.
	SuspendedAt     *time.Time `db:"suspended_at"`
	SuspendedReason string     `db:"suspended_reason"`
}

const infoColumns = `id, mode, slot, display_prefix, created_at, last_used_at, suspended_at, suspended_reason`

// Active lists a service's active keys: test before live, primary first.
func Active(ctx context.Context, q sqlx.QueryerContext, serviceID int64) ([]Info, error) {
	var out []Info
	err := sqlx.SelectContext(ctx, q, &out, `SELECT `+infoColumns+`
		FROM api_keys WHERE service_id = ? AND revoked_at IS NULL
		ORDER BY mode DESC, slot`, serviceID)
	return out, err
}

// Suspend holds the active key id of a service, with the reason the
// institution will read; it returns the key, or nil when there was none
// to suspend (revoked, another service's, or suspended already).
func Suspend(ctx context.Context, tx *sqlx.Tx, serviceID, id int64, reason string, now time.Time) (*Info, error) {
	return setSuspension(ctx, tx, `UPDATE api_keys SET suspended_at = ?, suspended_reason = ?
		WHERE id = ? AND service_id = ? AND revoked_at IS NULL AND suspended_at IS NULL RETURNING `+infoColumns,
		now.UTC(), reason, id, serviceID)
}

// Reactivate ends the suspension of key id of a service; nil when it was
// not suspended (or is not an active key of the service).
func Reactivate(ctx context.Context, tx *sqlx.Tx, serviceID, id int64) (*Info, error) {
	return setSuspension(ctx, tx, `UPDATE api_keys SET suspended_at = NULL, suspended_reason = ''
		WHERE id = ? AND service_id = ? AND revoked_at IS NULL AND suspended_at IS NOT NULL RETURNING `+infoColumns,
		id, serviceID)
}

func setSuspension(ctx context.Context, tx *sqlx.Tx, q string, args ...any) (*Info, error) {
	var k Info
	err := tx.GetContext(ctx, &k, q, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: suspension: %w", err)
	}
	return &k, nil
}

// SlotSuspended reports whether the active key of a slot is suspended:
// regenerating or revoking it would hand the institution a working key in
// its place, which is the platform admins' to decide.
func SlotSuspended(ctx context.Context, tx *sqlx.Tx, serviceID int64, m Mode, s Slot) (bool, error) {
	var n int
	err := tx.GetContext(ctx, &n, `SELECT count(*) FROM api_keys
		WHERE service_id = ? AND mode = ? AND slot = ? AND revoked_at IS NULL AND suspended_at IS NOT NULL`, serviceID, m, s)
	return n > 0, err
}
