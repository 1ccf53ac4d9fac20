package portal

import (
	"net/http"
	"time"

	"sportello/gateway"
	"sportello/messaging/send"
)

// dashboardRow adds to a service row what the dashboard shows at a glance:
// this week's test quota use and the last seven days' delivery outcomes.
type dashboardRow struct {
	serviceRow
	QuotaUsed, QuotaLimit, QuotaPercent int
	Delivered, Rejected, Pending        int
}

func servicesDashboard(a *App, r *http.Request) (string, any, error) {
	ctx, iid := r.Context(), instID(r)
	rows, err := a.serviceRows(r)
	if err != nil {
		return "", nil, err
	}
	now := a.now()
	week, _ := gateway.WeekOf(now)
	// Two queries for the whole institution. The messages one walks
	// messages(service_id, id) from a time-floor id per service, so it reads
	// only the last week's rows.
	var quota []struct {
		ServiceID int64 `db:"service_id"`
		Used      int   `db:"used"`
	}
	if err := a.DB.R.SelectContext(ctx, &quota, `SELECT q.service_id, q.used FROM quota_usage q
		JOIN services s ON s.id = q.service_id WHERE s.institution_id = ? AND q.week_start = ?`, iid, week); err != nil {
		return "", nil, err
	}
	var counts []struct {
		ServiceID int64 `db:"service_id"`
		statusCount
	}
	if err := a.DB.R.SelectContext(ctx, &counts, `SELECT m.service_id, m.status, count(*) AS n
		FROM services s JOIN messages m ON m.service_id = s.id AND m.id >= ?
		WHERE s.institution_id = ? AND m.institution_id = s.institution_id
		GROUP BY m.service_id, m.status`, send.IDFloor(now.Add(-7*24*time.Hour)), iid); err != nil {
		return "", nil, err
	}
	out := make([]dashboardRow, len(rows))
	index := make(map[int64]*dashboardRow, len(rows))
	for i, row := range rows {
		out[i] = dashboardRow{serviceRow: row, QuotaLimit: gateway.DefaultWeeklyQuota}
		index[row.Service.ID] = &out[i]
	}
	for _, q := range quota {
		if d := index[q.ServiceID]; d != nil {
			d.QuotaUsed = q.Used
			d.QuotaPercent = min(100, q.Used*100/max(1, d.QuotaLimit))
		}
	}
	for _, c := range counts {
		d := index[c.ServiceID]
		if d == nil {
			continue // a deleted service
		}
		switch c.Status {
		case "PROCESSED":
			d.Delivered += c.N
		case "REJECTED", "FAILED":
			d.Rejected += c.N
		default:
			d.Pending += c.N
		}
	}
	return "dashboard_services", out, nil
}
