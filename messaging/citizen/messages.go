package citizen

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/delivery"
)

// MessageItem is one inbox entry in a list.
type MessageItem struct {
	ID          string    `json:"id"`
	ServiceID   string    `json:"service_id"`
	ServiceName string    `json:"service_name"`
	Subject     string    `json:"subject,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	IsRead      bool      `json:"is_read"`
	IsArchived  bool      `json:"is_archived"`
	HasPayment  bool      `json:"has_payment"`
	DueDate     string    `json:"due_date,omitempty"`
	Removed     bool      `json:"content_deleted,omitempty"`
}

// MessageDetail is one message with its full content.
type MessageDetail struct {
	MessageItem
	Markdown    string                `json:"markdown,omitempty"`
	HTML        string                `json:"html,omitempty"` // sanitized rendering of Markdown
	PaymentData *delivery.PaymentData `json:"payment_data,omitempty"`
	Secure      bool                  `json:"require_secure_channels"`
}

type inboxRow struct {
	ID          string    `db:"message_id"`
	CreatedAt   time.Time `db:"created_at"`
	IsRead      bool      `db:"is_read"`
	IsArchived  bool      `db:"is_archived"`
	ServiceID   string    `db:"public_id"`
	ServiceName string    `db:"service_name"`
	Content     *string   `db:"content"`
	Secure      bool      `db:"require_secure_channels"`
}

const inboxSelect = `SELECT i.message_id, m.created_at, i.is_read, i.is_archived, s.public_id, s.name AS service_name,
		m.content, m.require_secure_channels
	FROM inbox i JOIN messages m ON m.id = i.message_id JOIN services s ON s.id = i.service_id
	WHERE i.fiscal_code = ?`

func (r *inboxRow) item() (MessageItem, *delivery.Content) {
	it := MessageItem{ID: r.ID, ServiceID: r.ServiceID, ServiceName: r.ServiceName, CreatedAt: r.CreatedAt.UTC(),
		IsRead: r.IsRead, IsArchived: r.IsArchived}
	c, _ := delivery.ParseContent(r.Content)
	if c == nil {
		it.Removed = true
		return it, nil
	}
	it.Subject, it.DueDate, it.HasPayment = c.Subject, c.DueDate, c.PaymentData != nil
	return it, c
}

func (r *inboxRow) detail() MessageDetail {
	it, c := r.item()
	d := MessageDetail{MessageItem: it, Secure: r.Secure}
	if c != nil {
		d.Markdown, d.HTML, d.PaymentData = c.Markdown, string(RenderMarkdown(c.Markdown)), c.PaymentData
	}
	return d
}

// Filters of the message list.
const (
	FilterInbox    = ""         // not archived
	FilterUnread   = "unread"   // not read, not archived
	FilterRead     = "read"     // read, not archived
	FilterArchived = "archived" // archived
)

// listInbox returns a page newest first and the cursor of the next page.
func (a *API) listInbox(ctx context.Context, fc, filter, cursor string, size int) ([]MessageItem, string, error) {
	q := inboxSelect
	args := []any{fc}
	switch filter {
	case FilterUnread:
		q += ` AND i.is_read = 0 AND i.is_archived = 0`
	case FilterRead:
		q += ` AND i.is_read = 1 AND i.is_archived = 0`
	case FilterArchived:
		q += ` AND i.is_archived = 1`
	default:
		q += ` AND i.is_archived = 0`
	}
	if cursor != "" {
		q += ` AND i.message_id < ?`
		args = append(args, cursor)
	}
	q += ` ORDER BY i.message_id DESC LIMIT ?`
	args = append(args, size+1)
	var rows []inboxRow
	if err := a.db.R.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > size {
		rows = rows[:size]
		next = encodeCursor(rows[size-1].ID)
	}
	items := make([]MessageItem, 0, len(rows))
	for i := range rows {
		it, _ := rows[i].item()
		items = append(items, it)
	}
	return items, next, nil
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return string(b), err
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request, fc string) {
	q := r.URL.Query()
	filter := q.Get("filter")
	if filter != FilterInbox && filter != FilterUnread && filter != FilterRead && filter != FilterArchived {
		a.problem(w, r, http.StatusBadRequest, "citizen.error.invalid", fieldProblem{Field: "filter", Detail: a.cat.T(lang(r), "citizen.field.filter")})
		return
	}
	size := 20
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			a.problem(w, r, http.StatusBadRequest, "citizen.error.invalid", fieldProblem{Field: "page_size", Detail: a.cat.T(lang(r), "citizen.field.page_size")})
			return
		}
		size = n
	}
	cursor := ""
	if c := q.Get("cursor"); c != "" {
		var err error
		if cursor, err = decodeCursor(c); err != nil {
			a.problem(w, r, http.StatusBadRequest, "citizen.error.invalid", fieldProblem{Field: "cursor", Detail: a.cat.T(lang(r), "citizen.field.cursor")})
			return
		}
	}
	items, next, err := a.listInbox(r.Context(), fc, filter, cursor, size)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	body := map[string]any{"items": items}
	if next != "" {
		body["next"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *API) loadMessage(ctx context.Context, q sqlx.QueryerContext, fc, id string) (*inboxRow, error) {
	var row inboxRow
	if err := sqlx.GetContext(ctx, q, &row, inboxSelect+` AND i.message_id = ?`, fc, id); err != nil {
		return nil, db.NotFound(err)
	}
	return &row, nil
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request, fc string) {
	row, err := a.loadMessage(r.Context(), a.db.R, fc, r.PathValue("id"))
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_message")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, row.detail())
}

// setStatus marks a message read/archived; nil leaves a flag alone.
func (a *API) setStatus(ctx context.Context, fc, id string, read, archived *bool) error {
	return a.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE inbox SET is_read = COALESCE(?, is_read), is_archived = COALESCE(?, is_archived)
			WHERE message_id = ? AND fiscal_code = ?`, read, archived, id, fc)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return db.ErrNotFound
		}
		return nil
	})
}

func (a *API) putMessageStatus(w http.ResponseWriter, r *http.Request, fc string) {
	var body struct {
		IsRead     *bool `json:"is_read"`
		IsArchived *bool `json:"is_archived"`
	}
	if be := decode(r, &body); be != nil {
		a.badBody(w, r, be)
		return
	}
	id := r.PathValue("id")
	err := a.setStatus(r.Context(), fc, id, body.IsRead, body.IsArchived)
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_message")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	row, err := a.loadMessage(r.Context(), a.db.R, fc, id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	it, _ := row.item()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "is_read": it.IsRead, "is_archived": it.IsArchived})
}
