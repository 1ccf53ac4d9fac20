package portal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// ErrUserExists is returned when creating an account whose email is taken.
var ErrUserExists = errors.New("an account with this email already exists")

// HasPlatformAdmin reports whether any platform admin exists (first start).
func HasPlatformAdmin(ctx context.Context, d *db.DB) (bool, error) {
	var n int
	err := d.R.GetContext(ctx, &n, `SELECT count(*) FROM users WHERE is_platform_admin = 1`)
	return n > 0, err
}

// CreatePlatformAdmin adds a platform admin with the given password (the
// CLI prints a random one once). The caller restarts or reloads roles; at
// start New loads them from the table.
func CreatePlatformAdmin(ctx context.Context, d *db.DB, email, password string) error {
	if !validEmail(email) && !validLocalEmail(email) {
		return fmt.Errorf("%q is not an email address", email)
	}
	hash := HashPassword(password)
	return d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM users WHERE email = ?`, email); err != nil {
			return err
		}
		if n > 0 {
			return ErrUserExists
		}
		now := time.Now().UTC()
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (email, name, password_hash, is_platform_admin, created_at, password_changed_at)
			VALUES (?, ?, ?, 1, ?, ?)`, email, "Amministratore piattaforma", hash, now, now); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{Actor: "system", Action: "admin.create", Target: email})
	})
}

// validLocalEmail accepts the default "admin@localhost", which has no dot.
func validLocalEmail(s string) bool { return s == "admin@localhost" }

// NewPassword returns a random password for one-time display.
func NewPassword() string { return newToken()[:20] }
