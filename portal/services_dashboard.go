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
	since := send.IDFloor(now.Add(-7 * 24 * time.Hour))
	out := make([]dashboardRow, len(rows))
	for i, row := range rows {
		d := dashboardRow{serviceRow: row, QuotaLimit: gateway.DefaultWeeklyQuota}
		id := row.Service.ID
		if err := a.DB.R.GetContext(ctx, &d.QuotaUsed, `SELECT COALESCE(SUM(q.used), 0) FROM quota_usage q
			JOIN services s ON s.id = q.service_id WHERE q.service_id = ? AND s.institution_id = ? AND q.week_start = ?`, id, iid, week); err != nil {
			return "", nil, err
		}
		d.QuotaPercent = min(100, d.QuotaUsed*100/max(1, d.QuotaLimit))
		var counts []statusCount
		if err := a.DB.R.SelectContext(ctx, &counts, `SELECT status, count(*) AS n FROM messages
			WHERE service_id = ? AND institution_id = ? AND id >= ? GROUP BY status`, id, iid, since); err != nil {
			return "", nil, err
		}
		for _, c := range counts {
			switch c.Status {
			case "PROCESSED":
				d.Delivered += c.N
			case "REJECTED", "FAILED":
				d.Rejected += c.N
			default:
				d.Pending += c.N
			}
		}
		out[i] = d
	}
	return "dashboard_services", out, nil
}
