package portal

import (
	"net/http"
	"regexp"
	"strings"

	"sportello/db"
	"sportello/portal/servicecard"
)

// auditActions are the actions the portal records, in the order the
// filter offers them; each has a name in words under audit.action.<code>.
// The code stays in the CSV export and in each row's title.
var auditActions = []string{
	"login", "login.failed", "logout", "password.change", "password.reset.request", "password.reset", "sessions.end_all",
	"institution.register", "institution.update", "institution.suspend", "institution.reactivate",
	"member.invite", "member.invite.revoke", "member.join", "member.role", "member.remove",
	"service.create", "service.card", "service.settings", "service.checklist", "service.edit", "service.discard", "service.submit", "service.withdraw",
	"service.approve", "service.reject", "service.suspend", "service.reactivate", "service.limits", "service.delete",
	"key.create_test", "key.create_live", "key.regenerate", "key.revoke", "key.suspend", "key.reactivate",
	"admin.create", "admin.grant", "admin.revoke", "demo.seed",
}

func knownAuditAction(code string) bool {
	for _, c := range auditActions {
		if c == code {
			return true
		}
	}
	return false
}

// auditRow is one event as the audit page shows it.
type auditRow struct {
	db.AuditEvent
	ActionName string // in the reader's language
	DetailText string // known detail formats in the reader's language
	// InstitutionName names the event's institution in the console (its
	// number alone told an admin nothing).
	InstitutionName string
	// ActorURL is this page filtered by the event's actor (the filter
	// matches how an address begins, so the link gives the whole one).
	ActorURL string
}

// actionName names an action in words; an unknown code shows as is.
func (a *App) actionName(r *http.Request, code string) string {
	if knownAuditAction(code) {
		return a.T(r, "audit.action."+code)
	}
	return code
}

var (
	detailChecklist = regexp.MustCompile(`^version (\d+): ([a-z_]+) → ([a-z]+)$`)
	detailVersion   = regexp.MustCompile(`^version (\d+)$`)
	detailRole      = regexp.MustCompile(`^role=([a-z]+)$`)
	detailRoleWas   = regexp.MustCompile(`^role was ([a-z]+)$`)
	detailRoleMove  = regexp.MustCompile(`^([a-z]+) → ([a-z]+)$`)
	detailSettings  = regexp.MustCompile(`^recipients (\d+), networks (\d+)$`)
)

// detailText renders the details the portal writes in a fixed form
// (versions, checklist answers, roles) in the reader's language; other
// details (reasons typed by people, key ids) are shown as recorded.
func (a *App) detailText(r *http.Request, action, d string) string {
	role := func(code string) string {
		if code == "admin" || code == "operator" {
			return a.T(r, "role."+code)
		}
		return code
	}
	switch {
	case action == "service.checklist":
		if m := detailChecklist.FindStringSubmatch(d); m != nil {
			if _, ok := servicecard.ItemByID(m[2]); ok {
				return a.T(r, "audit.detail.checklist", m[1], a.T(r, "checklist."+m[2]+".title"), a.T(r, "checklist.state."+m[3]))
			}
		}
	case action == "service.card":
		if m := detailVersion.FindStringSubmatch(d); m != nil {
			return a.T(r, "audit.detail.version", m[1])
		}
	case action == "service.settings":
		if m := detailSettings.FindStringSubmatch(d); m != nil {
			return a.T(r, "audit.detail.settings", m[1], m[2])
		}
	case action == "member.invite" || action == "member.join":
		if m := detailRole.FindStringSubmatch(d); m != nil {
			return a.T(r, "audit.detail.role", role(m[1]))
		}
	case action == "member.remove":
		if m := detailRoleWas.FindStringSubmatch(d); m != nil {
			return a.T(r, "audit.detail.role_was", role(m[1]))
		}
	case action == "member.role":
		if m := detailRoleMove.FindStringSubmatch(d); m != nil {
			return role(m[1]) + " → " + role(m[2])
		}
	}
	return d
}

func (a *App) auditRows(r *http.Request, evs []db.AuditEvent) []auditRow {
	rows := make([]auditRow, 0, len(evs))
	for _, ev := range evs {
		rows = append(rows, auditRow{AuditEvent: ev, ActionName: a.actionName(r, ev.Action), DetailText: a.detailText(r, ev.Action, ev.Detail)})
	}
	return rows
}

// nameInstitutions fills the rows' institution names (one query for the
// page); a name that cannot be read leaves the number shown.
func (a *App) nameInstitutions(r *http.Request, rows []auditRow) {
	ids := map[int64]bool{}
	for _, row := range rows {
		if row.InstitutionID != nil {
			ids[*row.InstitutionID] = true
		}
	}
	if len(ids) == 0 {
		return
	}
	query, args := `SELECT id, name FROM institutions WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, make([]any, 0, len(ids))
	for id := range ids {
		args = append(args, id)
	}
	var found []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	if err := a.DB.R.SelectContext(r.Context(), &found, query, args...); err != nil {
		a.Logger.Warn("audit: institution names", "err", err)
		return
	}
	names := map[int64]string{}
	for _, f := range found {
		names[f.ID] = f.Name
	}
	for i := range rows {
		if id := rows[i].InstitutionID; id != nil {
			rows[i].InstitutionName = names[*id]
		}
	}
}

// auditActionOptions is the action filter: all actions, all actions on
// services, keys, members or the institution, then each action by its
// name; a value typed in the address (a prefix such as "member") is kept.
func (a *App) auditActionOptions(r *http.Request, selected string) []Option {
	opts := []Option{{Value: "", Label: a.T(r, "audit.filter.all")}}
	for _, group := range []string{"service", "key", "member", "institution"} {
		opts = append(opts, Option{Value: group + ".", Label: a.T(r, "audit.group."+group)})
	}
	for _, c := range auditActions {
		opts = append(opts, Option{Value: c, Label: a.T(r, "audit.action."+c)})
	}
	found := false
	for i := range opts {
		if opts[i].Value == selected {
			opts[i].Selected, found = true, true
		}
	}
	if !found {
		opts = append(opts, Option{Value: selected, Label: selected, Selected: true})
	}
	return opts
}
