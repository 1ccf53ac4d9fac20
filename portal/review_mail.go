package portal

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"sportello/gateway/keys"
	"sportello/messaging/textcheck"
	"sportello/templates/i18n"
)

// queueDecisionMail tells the institution that a platform admin decided on
// a submitted service (kind approve or reject), or suspended or
// reactivated one (versionID 0: no submitter, the admins only): staff submit and then wait days, and should not have
// to keep checking the portal. It writes to mail_outbox inside the
// decision's transaction, so the mail exists exactly when the decision
// does; the delivery pipeline sends it (or platform admins read it in the
// console without SMTP). Recipients: the institution's admins and whoever
// submitted the version, if still a member. Institution staff read
// Italian first, so the mail is in Italian.
func (a *App) queueDecisionMail(ctx context.Context, tx *sqlx.Tx, s *Service, versionID int64, serviceName, kind, reason string) error {
	var to []string
	if err := tx.SelectContext(ctx, &to, `SELECT DISTINCT u.email FROM users u JOIN memberships m ON m.user_id = u.id
		WHERE m.institution_id = ? AND (m.role = 'admin' OR u.id = (SELECT actor_user_id FROM service_events
			WHERE version_id = ? AND kind = 'submit' ORDER BY id DESC LIMIT 1))
		ORDER BY u.email`, s.InstitutionID, versionID); err != nil {
		return err
	}
	var instName string
	if err := tx.GetContext(ctx, &instName, `SELECT name FROM institutions WHERE id = ?`, s.InstitutionID); err != nil {
		return err
	}
	link := fmt.Sprintf("%s/i/%d/services/%s", strings.TrimRight(a.BaseURL, "/"), s.InstitutionID, s.PublicID)
	l := i18n.Default
	subject := a.Catalog.T(l, "review.mail."+kind+".subject", serviceName)
	var body string
	switch kind {
	case "reject":
		body = a.Catalog.T(l, "review.mail.reject.body", serviceName, instName, reason, link)
	case "suspend":
		if reason == "" {
			reason = a.Catalog.T(l, "review.mail.suspend.no_reason")
		}
		body = a.Catalog.T(l, "review.mail.suspend.body", serviceName, instName, reason, link)
	case "reactivate":
		body = a.Catalog.T(l, "review.mail.reactivate.body", serviceName, instName, link)
	default:
		body = a.Catalog.T(l, "review.mail.approve.body", serviceName, instName, link)
	}
	return a.queueMail(ctx, tx, to, subject, body)
}

// queueInstitutionMail tells an institution's admins that a platform admin
// suspended (with the reason given) or reactivated it: while suspended its
// members cannot open its pages to read why, and its integrators meet 403s.
func (a *App) queueInstitutionMail(ctx context.Context, tx *sqlx.Tx, iid int64, name string, suspend bool, reason string) error {
	to, err := instAdminEmails(ctx, tx, iid)
	if err != nil {
		return err
	}
	l := i18n.Default
	subject := a.Catalog.T(l, "review.mail.institution_reactivate.subject", name)
	body := a.Catalog.T(l, "review.mail.institution_reactivate.body", name, strings.TrimRight(a.BaseURL, "/"))
	if suspend {
		if reason == "" {
			reason = a.Catalog.T(l, "review.mail.suspend.no_reason")
		}
		subject = a.Catalog.T(l, "review.mail.institution_suspend.subject", name)
		body = a.Catalog.T(l, "review.mail.institution_suspend.body", name, reason)
	}
	return a.queueMail(ctx, tx, to, subject, body)
}

// queueKeyMail tells an institution's admins that a platform admin
// suspended one of a service's keys (with the reason) or reactivated it:
// their integrator meets 403s with it meanwhile and asks them why.
func (a *App) queueKeyMail(ctx context.Context, tx *sqlx.Tx, s *Service, k *keys.Info, suspend bool, reason string) error {
	to, err := instAdminEmails(ctx, tx, s.InstitutionID)
	if err != nil {
		return err
	}
	l := i18n.Default
	key := strings.ToLower(a.Catalog.T(l, "keys.slot."+string(k.Mode)+"_"+string(k.Slot))) + " " + k.DisplayPrefix
	link := strings.TrimRight(a.BaseURL, "/") + a.keysURL(s)
	subject := a.Catalog.T(l, "review.mail.key_reactivate.subject", s.Name)
	body := a.Catalog.T(l, "review.mail.key_reactivate.body", key, s.Name, link)
	if suspend {
		subject = a.Catalog.T(l, "review.mail.key_suspend.subject", s.Name)
		body = a.Catalog.T(l, "review.mail.key_suspend.body", key, s.Name, reason, link)
	}
	return a.queueMail(ctx, tx, to, subject, body)
}

// instAdminEmails are the addresses of an institution's admins.
func instAdminEmails(ctx context.Context, tx *sqlx.Tx, iid int64) ([]string, error) {
	var to []string
	err := tx.SelectContext(ctx, &to, `SELECT u.email FROM users u JOIN memberships m ON m.user_id = u.id
		WHERE m.institution_id = ? AND m.role = 'admin' ORDER BY u.email`, iid)
	return to, err
}

// queueMail writes one mail per address to mail_outbox inside tx, so the
// mail exists exactly when what it tells of does; delivery sends it, or
// platform admins read it in the console without SMTP.
func (a *App) queueMail(ctx context.Context, tx *sqlx.Tx, to []string, subject, body string) error {
	now := a.now()
	for _, addr := range to {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mail_outbox (to_addr, subject, body, created_at) VALUES (?, ?, ?, ?)`,
			addr, subject, body, now); err != nil {
			return err
		}
	}
	return nil
}

// plainLine is s trimmed, on one line, without control or text-direction
// characters: a reason typed in an inline form and shown to another party
// in a page and a mail (an override there could make it read backwards).
func plainLine(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if r == '\n' || r == '\r' || r == '\t' {
			b.WriteRune(' ')
			continue
		}
		if _, bad := textcheck.BadCharacter(string(r), false); bad {
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
