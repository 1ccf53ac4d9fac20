package portal

import (
	"context"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"sportello/messaging/citizen"
	"sportello/messaging/delivery"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/send"
)

// Delivery pages of a service: recent messages with their outcome, and the
// sandbox where the team sees test messages as a citizen would.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		inst.Handle("/services/{sid}/messages", a.inst("messages", "read", a.serviceMessagesPage)).Methods("GET")
		inst.Handle("/services/{sid}/sandbox", a.inst("messages", "read", a.serviceSandboxPage)).Methods("GET")
		root.Handle("/admin/mail", a.platform("admin", "read", a.adminMailPage)).Methods("GET")
	})
}

type deliveryMessage struct {
	ID          string     `db:"id"`
	FiscalCode  string     `db:"fiscal_code"`
	Mode        string     `db:"mode"`
	Status      string     `db:"status"`
	Reason      *string    `db:"rejection_reason"`
	Content     *string    `db:"content"`
	Secure      bool       `db:"require_secure_channels"`
	CreatedAt   time.Time  `db:"created_at"`
	ProcessedAt *time.Time `db:"processed_at"`
	// Filled from the row for the templates.
	Masked  string            `db:"-"`
	Subject string            `db:"-"`
	Body    *delivery.Content `db:"-"`
	HTML    template.HTML     `db:"-"`
	Amount  string            `db:"-"`
	Removed bool              `db:"-"`
	Why     string            `db:"-"` // rejection reason code, "" when none
}

func (m *deliveryMessage) fill(render bool) {
	m.Masked = fiscalcode.Mask(m.FiscalCode)
	if m.Reason != nil {
		m.Why = *m.Reason
	}
	m.FiscalCode = "" // never reaches a template
	c, err := delivery.ParseContent(m.Content)
	m.Content = nil
	if err != nil || c == nil {
		m.Removed = true
		return
	}
	m.Subject, m.Body = c.Subject, c
	if render {
		m.HTML = citizen.RenderMarkdown(c.Markdown)
		if c.PaymentData != nil {
			m.Amount = strconv.FormatInt(c.PaymentData.Amount/100, 10) + "," + twoDigits(c.PaymentData.Amount%100)
		}
	}
}

func twoDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	if len(s) < 2 {
		return "0" + s
	}
	return s
}

type deliveryFailure struct {
	MessageID string    `db:"message_id"`
	Channel   string    `db:"channel"`
	Status    string    `db:"status"`
	Attempts  int       `db:"attempts"`
	LastError string    `db:"last_error"`
	UpdatedAt time.Time `db:"updated_at"`
}

type statusCount struct {
	Status string `db:"status"`
	N      int    `db:"n"`
}

// recentMessages lists the service's newest messages, of one mode if
// mode is set, with an id at or above floor if it is set.
func (a *App) recentMessages(ctx context.Context, instID, serviceID int64, mode, floor string, limit int, render bool) ([]deliveryMessage, error) {
	q := `SELECT id, fiscal_code, mode, status, rejection_reason, content, require_secure_channels, created_at, processed_at
		FROM messages WHERE service_id = ? AND institution_id = ?`
	args := []any{serviceID, instID}
	if floor != "" {
		q += ` AND id >= ?`
		args = append(args, floor)
	}
	if mode != "" {
		q += ` AND mode = ?`
		args = append(args, mode)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	var rows []deliveryMessage
	if err := a.DB.R.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].fill(render)
	}
	return rows, nil
}

// deliveryWindow is how far back the service messages page counts
// messages by status and looks for notification problems, as the
// dashboard counts a week of sends. Over a service's whole history both
// read every message it ever sent (a year of a large service: 200,000
// rows, 0.7 s a page); from a time-floor id they walk
// messages(service_id, id) over the last week only.
const deliveryWindow = 7 * 24 * time.Hour

const (
	sqlDeliveryCounts = `SELECT status, count(*) AS n FROM messages
		WHERE service_id = ? AND institution_id = ? AND id >= ? GROUP BY status ORDER BY status`
	sqlDeliveryFailures = `SELECT n.message_id, n.channel, n.status, n.attempts, n.last_error, n.updated_at
		FROM messages m JOIN notifications n ON n.message_id = m.id
		WHERE m.service_id = ? AND m.institution_id = ? AND m.id >= ?
			AND (n.status IN ('FAILED', 'EXPIRED') OR (n.status = 'THROTTLED' AND n.attempts > 0))
		ORDER BY n.updated_at DESC LIMIT 20`
)

func (a *App) serviceMessagesPage(w http.ResponseWriter, r *http.Request) {
	ctx, iid := r.Context(), instID(r)
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	s := sc.Service
	floor := send.IDFloor(a.now().Add(-deliveryWindow))
	var counts []statusCount
	if err := a.DB.R.SelectContext(ctx, &counts, sqlDeliveryCounts, s.ID, iid, floor); err != nil {
		a.serverError(w, r, err)
		return
	}
	recent, err := a.recentMessages(ctx, iid, s.ID, "", "", 50, false)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	var failures []deliveryFailure
	if err := a.DB.R.SelectContext(ctx, &failures, sqlDeliveryFailures, s.ID, iid, floor); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "service_messages", &Page{Title: a.T(r, "delivery.page.title") + " · " + s.Name, Section: "services",
		Data: map[string]any{"S": sc, "Tab": "messages", "Service": s, "Counts": counts, "Recent": recent, "Failures": failures}})
}

// sandboxWindow is how far back the sandbox looks for test messages: as
// far as message content is kept by default (delivery's retention), since
// an older message has no text left to show. Without it, a service in
// production for months walked its whole history of live messages
// looking for test ones (200,000 rows, 0.22-0.25 s a page).
const sandboxWindow = 30 * 24 * time.Hour

func (a *App) serviceSandboxPage(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	s := sc.Service
	msgs, err := a.recentMessages(r.Context(), instID(r), s.ID, "test", send.IDFloor(a.now().Add(-sandboxWindow)), 20, true)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "service_sandbox", &Page{Title: a.T(r, "delivery.sandbox.title") + " · " + s.Name, Section: "services",
		Data: map[string]any{"S": sc, "Tab": "sandbox", "Service": s, "Messages": msgs}})
}

type outboxMail struct {
	ID        int64      `db:"id"`
	MessageID *string    `db:"message_id"`
	To        string     `db:"to_addr"`
	Subject   string     `db:"subject"`
	Body      string     `db:"body"`
	CreatedAt time.Time  `db:"created_at"`
	SentAt    *time.Time `db:"sent_at"`
	FailedAt  *time.Time `db:"failed_at"`
	Failure   *string    `db:"failure"`
}

// adminMailPage shows the e-mail Sportello wrote: without an SMTP server
// this is where notices wait (sent_at empty), so platform admins can read
// them; with one, it is the record of what went out (without the text) and
// of what was given up on (with the reason). Rows older than the
// retention period are deleted by the delivery pipeline.
func (a *App) adminMailPage(w http.ResponseWriter, r *http.Request) {
	var before int64
	if v, err := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64); err == nil && v > 0 {
		before = v
	}
	q := `SELECT id, message_id, to_addr, subject, body, created_at, sent_at, failed_at, failure FROM mail_outbox`
	args := []any{}
	if before > 0 {
		q += ` WHERE id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC LIMIT 50`
	var mails []outboxMail
	if err := a.DB.R.SelectContext(r.Context(), &mails, q, args...); err != nil {
		a.serverError(w, r, err)
		return
	}
	next := int64(0)
	if len(mails) == 50 {
		next = mails[len(mails)-1].ID
	}
	a.render(w, r, http.StatusOK, "admin_mail", &Page{Title: a.T(r, "delivery.mail.title"), Section: "mail", Platform: true,
		Data: map[string]any{"Mails": mails, "Next": next}})
}
