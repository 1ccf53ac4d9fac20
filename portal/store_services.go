package portal

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/portal/servicecard"
)

// Service is one service of an institution with its runtime settings.
type Service struct {
	ID                   int64      `db:"id"`
	PublicID             string     `db:"public_id"`
	InstitutionID        int64      `db:"institution_id"`
	Name                 string     `db:"name"`
	LiveVersionID        *int64     `db:"live_version_id"`
	WorkingVersionID     *int64     `db:"working_version_id"`
	AuthorizedRecipients string     `db:"authorized_recipients"`
	AuthorizedCIDRs      string     `db:"authorized_cidrs"`
	MaxPaymentCents      int64      `db:"max_payment_cents"`
	RequireSecure        bool       `db:"require_secure_channels"`
	IsVisible            bool       `db:"is_visible"`
	RateLimitRequests    int        `db:"rate_limit_requests"`
	RateLimitWindowS     int        `db:"rate_limit_window_s"`
	SuspendedAt          *time.Time `db:"suspended_at"`
	DeletedAt            *time.Time `db:"deleted_at"`
	CreatedAt            time.Time  `db:"created_at"`
}

const serviceColumns = `id, public_id, institution_id, name, live_version_id, working_version_id, authorized_recipients,
	authorized_cidrs, max_payment_cents, require_secure_channels, is_visible, rate_limit_requests, rate_limit_window_s,
	suspended_at, deleted_at, created_at`

// InProduction reports whether a version has been approved.
func (s *Service) InProduction() bool { return s.LiveVersionID != nil }

// Recipients decodes the authorized test fiscal codes.
func (s *Service) Recipients() []string { return jsonList(s.AuthorizedRecipients) }

// CIDRs decodes the authorized networks.
func (s *Service) CIDRs() []string { return jsonList(s.AuthorizedCIDRs) }

func jsonList(s string) []string {
	var out []string
	_ = json.Unmarshal([]byte(s), &out)
	return out
}

// Version is one version of a service's card and checklist.
type Version struct {
	ID             int64      `db:"id"`
	ServiceID      int64      `db:"service_id"`
	VersionNo      int        `db:"version_no"`
	State          string     `db:"state"`
	CardJSON       string     `db:"card"`
	ChecklistJSON  string     `db:"checklist"`
	CreatedAt      time.Time  `db:"created_at"`
	UpdatedAt      time.Time  `db:"updated_at"`
	SubmittedAt    *time.Time `db:"submitted_at"`
	DecidedAt      *time.Time `db:"decided_at"`
	DecisionReason string     `db:"decision_reason"`

	Card      servicecard.Card      `db:"-"`
	Checklist servicecard.Checklist `db:"-"`
}

func (v *Version) decode() error {
	if err := json.Unmarshal([]byte(v.CardJSON), &v.Card); err != nil {
		return fmt.Errorf("version %d card: %w", v.ID, err)
	}
	v.Checklist = servicecard.Checklist{}
	if v.ChecklistJSON != "" {
		if err := json.Unmarshal([]byte(v.ChecklistJSON), &v.Checklist); err != nil {
			return fmt.Errorf("version %d checklist: %w", v.ID, err)
		}
	}
	return nil
}

const versionColumns = `id, service_id, version_no, state, card, checklist, created_at, updated_at, submitted_at, decided_at, decision_reason`

func loadVersion(ctx context.Context, q sqlx.QueryerContext, id int64) (*Version, error) {
	var v Version
	if err := sqlx.GetContext(ctx, q, &v, `SELECT `+versionColumns+` FROM service_versions WHERE id = ?`, id); err != nil {
		return nil, db.NotFound(err)
	}
	return &v, v.decode()
}

// ServiceEvent is one line of a service's timeline.
type ServiceEvent struct {
	At        time.Time `db:"at"`
	Kind      string    `db:"kind"`
	Reason    string    `db:"reason"`
	VersionNo int       `db:"version_no"` // 0 when the event concerns no version
	Actor     *string   `db:"actor"`
}

func (a *App) serviceEvents(ctx context.Context, serviceID int64) ([]ServiceEvent, error) {
	var out []ServiceEvent
	err := a.DB.R.SelectContext(ctx, &out, `SELECT e.at, e.kind, e.reason, COALESCE(v.version_no, 0) AS version_no, u.name AS actor
		FROM service_events e LEFT JOIN service_versions v ON v.id = e.version_id LEFT JOIN users u ON u.id = e.actor_user_id
		WHERE e.service_id = ? ORDER BY e.id DESC`, serviceID)
	return out, err
}

func newPublicID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "svc_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// serviceCtx is a service loaded for a request, with its versions.
type serviceCtx struct {
	Service *Service
	Live    *Version // nil before the first approval
	Working *Version // nil when no draft/submission/rejection is open
}

// Current is the version people are editing or, failing that, the one in force.
func (s *serviceCtx) Current() *Version {
	if s.Working != nil {
		return s.Working
	}
	return s.Live
}

// State summarises the service for lists: draft, submitted, rejected,
// approved (live with no open work), approved_editing, suspended.
func (s *serviceCtx) State() string {
	if s.Service.SuspendedAt != nil {
		return "suspended"
	}
	if s.Working == nil {
		return "approved"
	}
	if s.Live != nil && s.Working.State == "draft" {
		return "approved_editing"
	}
	return s.Working.State
}

var errServiceGone = errors.New("service not found")

// loadService loads a service of an institution (never another's: the
// institution id is part of the query) with its versions.
func (a *App) loadService(ctx context.Context, q sqlx.QueryerContext, instID int64, publicID string) (*serviceCtx, error) {
	var s Service
	err := sqlx.GetContext(ctx, q, &s, `SELECT `+serviceColumns+` FROM services
		WHERE public_id = ? AND institution_id = ? AND deleted_at IS NULL`, publicID, instID)
	if err != nil {
		return nil, db.NotFound(err)
	}
	return a.withVersions(ctx, q, &s)
}

func (a *App) withVersions(ctx context.Context, q sqlx.QueryerContext, s *Service) (*serviceCtx, error) {
	sc := &serviceCtx{Service: s}
	var err error
	if s.LiveVersionID != nil {
		if sc.Live, err = loadVersion(ctx, q, *s.LiveVersionID); err != nil {
			return nil, err
		}
	}
	if s.WorkingVersionID != nil {
		if sc.Working, err = loadVersion(ctx, q, *s.WorkingVersionID); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// serviceOf loads the {sid} service of the current /i/{iid}/ request,
// answering 404 itself when it does not exist here.
func (a *App) serviceOf(w http.ResponseWriter, r *http.Request) (*serviceCtx, bool) {
	sc, err := a.loadService(r.Context(), a.DB.R, instID(r), mux.Vars(r)["sid"])
	if errors.Is(err, db.ErrNotFound) {
		a.notFound(w, r)
		return nil, false
	} else if err != nil {
		a.serverError(w, r, err)
		return nil, false
	}
	return sc, true
}

// serviceEvent records a lifecycle transition in the timeline and the
// audit log, in the transaction of the change.
func (a *App) serviceEvent(ctx context.Context, tx *sqlx.Tx, r *http.Request, s *Service, versionID *int64, kind, reason string) error {
	v := viewerOf(r)
	if _, err := tx.ExecContext(ctx, `INSERT INTO service_events (service_id, version_id, at, actor_user_id, kind, reason) VALUES (?, ?, ?, ?, ?, ?)`,
		s.ID, versionID, a.now(), v.User.ID, kind, reason); err != nil {
		return err
	}
	return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &s.InstitutionID,
		Action: "service." + kind, Target: s.Name + " (" + s.PublicID + ")", Detail: truncate(reason, 500), ClientIP: a.Resolver.String(r)})
}

// openDraft returns the version to edit, inside tx: the working version
// (a rejected one goes back to draft when edited), or a new draft copied
// from the version in force. A submitted version cannot be edited.
func (a *App) openDraft(ctx context.Context, tx *sqlx.Tx, r *http.Request, sc *serviceCtx) (*Version, error) {
	// sc was read before the transaction: a colleague may have discarded,
	// submitted or opened a draft since. Inside the write transaction the
	// state is settled, so it is read again there; otherwise an edit would
	// land on a superseded version (lost, the user told "saved") or open a
	// second draft. Callers apply their change to the fresh version: the
	// checklist's changed points onto the answers as they are now.
	fresh, err := a.loadService(ctx, tx, sc.Service.InstitutionID, sc.Service.PublicID)
	if errors.Is(db.NotFound(err), db.ErrNotFound) {
		return nil, errServiceGone // deleted meanwhile
	} else if err != nil {
		return nil, err
	}
	*sc = *fresh
	if w := sc.Working; w != nil {
		switch w.State {
		case "submitted":
			return nil, errSubmitted
		case "rejected":
			if _, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'draft' WHERE id = ?`, w.ID); err != nil {
				return nil, err
			}
			w.State = "draft"
		}
		return w, nil
	}
	if sc.Live == nil {
		return nil, errServiceGone
	}
	now, uid := a.now(), viewerOf(r).User.ID
	res, err := tx.ExecContext(ctx, `INSERT INTO service_versions (service_id, version_no, state, card, checklist, created_at, created_by, updated_at, updated_by)
		VALUES (?, (SELECT max(version_no) + 1 FROM service_versions WHERE service_id = ?), 'draft', ?, ?, ?, ?, ?, ?)`,
		sc.Service.ID, sc.Service.ID, sc.Live.CardJSON, sc.Live.ChecklistJSON, now, uid, now, uid)
	if err != nil {
		return nil, err
	}
	id, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `UPDATE services SET working_version_id = ? WHERE id = ?`, id, sc.Service.ID); err != nil {
		return nil, err
	}
	v, err := loadVersion(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	sc.Working = v
	return v, a.serviceEvent(ctx, tx, r, sc.Service, &id, "edit", "")
}

var (
	errSubmitted        = errors.New("the version is under review")
	errChangedMeanwhile = errors.New("the version changed since it was checked")
	errDuplicateName    = errors.New("another live service of the institution has this name")
	errDuplicateDraft   = errors.New("another service of the institution not yet approved has this name")
)

// liveNameTaken reports whether another live service of the institution
// has this name (case-insensitive): citizens could not tell them apart.
func liveNameTaken(ctx context.Context, q sqlx.QueryerContext, instID, serviceID int64, name string) (bool, error) {
	var n int
	err := sqlx.GetContext(ctx, q, &n, `SELECT count(*) FROM services s JOIN service_versions v ON v.id = s.live_version_id
		WHERE s.institution_id = ? AND s.id <> ? AND s.deleted_at IS NULL AND lower(json_extract(v.card, '$.name')) = lower(?)`,
		instID, serviceID, name)
	return n > 0, err
}
