package portal

import (
	"context"
	"time"

	"sportello/db"
)

// User is a portal account.
type User struct {
	ID              int64     `db:"id"`
	Email           string    `db:"email"`
	Name            string    `db:"name"`
	PasswordHash    string    `db:"password_hash"`
	IsPlatformAdmin bool      `db:"is_platform_admin"`
	CreatedAt       time.Time `db:"created_at"`
	PasswordChanged time.Time `db:"password_changed_at"`
}

// Institution is a public body using Sportello.
type Institution struct {
	ID         int64     `db:"id"`
	Name       string    `db:"name"`
	FiscalCode string    `db:"fiscal_code"`
	PEC        string    `db:"pec"`
	Status     string    `db:"status"`
	CreatedAt  time.Time `db:"created_at"`
}

// Suspended reports whether the institution is suspended.
func (i *Institution) Suspended() bool { return i.Status == "suspended" }

// Membership is a user's role in an institution.
type Membership struct {
	InstitutionID   int64  `db:"institution_id"`
	InstitutionName string `db:"institution_name"`
	Role            string `db:"role"`
	Status          string `db:"status"`
}

const userColumns = `id, email, name, password_hash, is_platform_admin, created_at, password_changed_at`

func (a *App) userByID(ctx context.Context, id int64) (User, error) {
	var u User
	err := a.DB.R.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
	return u, db.NotFound(err)
}

func (a *App) userByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := a.DB.R.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE email = ?`, email)
	return u, db.NotFound(err)
}

func (a *App) institutionByID(ctx context.Context, id int64) (*Institution, error) {
	var i Institution
	err := a.DB.R.GetContext(ctx, &i, `SELECT id, name, fiscal_code, pec, status, created_at FROM institutions WHERE id = ?`, id)
	if err != nil {
		return nil, db.NotFound(err)
	}
	return &i, nil
}

// membershipsOf lists the institutions a user belongs to, by name.
func (a *App) membershipsOf(ctx context.Context, userID int64) ([]Membership, error) {
	var ms []Membership
	err := a.DB.R.SelectContext(ctx, &ms, `SELECT m.institution_id, i.name AS institution_name, m.role, i.status
		FROM memberships m JOIN institutions i ON i.id = m.institution_id
		WHERE m.user_id = ? ORDER BY i.name COLLATE NOCASE`, userID)
	return ms, err
}

// roleIn returns the user's membership role in an institution, or "".
func (a *App) roleIn(ctx context.Context, userID, instID int64) (string, error) {
	var role string
	err := a.DB.R.GetContext(ctx, &role, `SELECT role FROM memberships WHERE user_id = ? AND institution_id = ?`, userID, instID)
	if err = db.NotFound(err); err == db.ErrNotFound {
		return "", nil
	}
	return role, err
}
