package gateway

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Rome must resolve even on hosts without tzdata

	"sportello/db"
	"sportello/messaging/send"
)

// qQuotaAdd counts one request; it runs inside the group-commit transaction
// of the request it counts, so the count and the answer are durable together.
const qQuotaAdd = `INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, ?, 1)
	ON CONFLICT (service_id, week_start) DO UPDATE SET used = used + 1`

// weeklyQuota is the test-mode allowance per service and calendar week
// (Monday 00:00 Europe/Rome). The database holds the committed count; in
// memory each service also holds the requests in flight, so concurrent
// requests reserve a unit before their transaction and never overshoot:
// committed + in flight never exceeds the limit.
type weeklyQuota struct {
	d     *db.DB
	limit int

	mu sync.Mutex
	m  map[int64]*weekCount
}

type weekCount struct {
	week     string
	used     int // committed
	inFlight int // reserved, transaction not finished
}

func newWeeklyQuota(d *db.DB, limit int) *weeklyQuota {
	return &weeklyQuota{d: d, limit: limit, m: map[int64]*weekCount{}}
}

// DefaultWeeklyQuota is the test-mode allowance per service and week.
const DefaultWeeklyQuota = 1000

var rome = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		panic(err) // time/tzdata is embedded: cannot happen
	}
	return loc
}()

// WeekOf returns the quota week of t, as quota_usage.week_start (the
// Monday, Europe/Rome, YYYY-MM-DD), and when the next week starts.
func WeekOf(t time.Time) (string, time.Time) {
	t = t.In(rome)
	back := (int(t.Weekday()) + 6) % 7 // days since Monday
	monday := time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, rome)
	next := time.Date(t.Year(), t.Month(), t.Day()-back+7, 0, 0, 0, 0, rome)
	return monday.Format("2006-01-02"), next
}

func (q *weeklyQuota) weekOf(now time.Time) (string, time.Time) { return WeekOf(now) }

// quotaState is what the rate-limit headers show.
type quotaState struct {
	limit, remaining int
	reset            time.Time
}

// count returns the service's counter for the current week, loading the
// committed count the first time the week is seen (after a restart too).
// Called with q.mu held.
func (q *weeklyQuota) count(ctx context.Context, serviceID int64, week string) (*weekCount, error) {
	c := q.m[serviceID]
	if c != nil && c.week == week {
		return c, nil
	}
	// A request of the old week still committing holds its own counter
	// and week key, so the new week starts from the database alone.
	var used int
	err := q.d.R.GetContext(ctx, &used, `SELECT used FROM quota_usage WHERE service_id = ? AND week_start = ?`, serviceID, week)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("gateway: load quota: %w", err)
	}
	c = &weekCount{week: week, used: used}
	q.m[serviceID] = c
	return c, nil
}

// peek reports the state without reserving.
func (q *weeklyQuota) peek(ctx context.Context, serviceID int64, now time.Time) (quotaState, error) {
	week, next := q.weekOf(now)
	q.mu.Lock()
	defer q.mu.Unlock()
	c, err := q.count(ctx, serviceID, week)
	if err != nil {
		return quotaState{}, err
	}
	return quotaState{limit: q.limit, remaining: max(0, q.limit-c.used-c.inFlight), reset: next}, nil
}

// reservation is one unit of quota held by a request in flight.
type reservation struct {
	q         *weeklyQuota
	serviceID int64
	c         *weekCount
	week      string
	done      bool
}

// reserve holds one unit; ok is false when the week's allowance is spent.
func (q *weeklyQuota) reserve(ctx context.Context, serviceID int64, now time.Time) (*reservation, quotaState, bool, error) {
	week, next := q.weekOf(now)
	q.mu.Lock()
	defer q.mu.Unlock()
	c, err := q.count(ctx, serviceID, week)
	if err != nil {
		return nil, quotaState{}, false, err
	}
	st := quotaState{limit: q.limit, reset: next}
	if c.used+c.inFlight >= q.limit {
		return nil, st, false, nil
	}
	c.inFlight++
	st.remaining = q.limit - c.used - c.inFlight
	return &reservation{q: q, serviceID: serviceID, c: c, week: week}, st, true, nil
}

// finish ends the reservation: committed turns it into a counted request,
// otherwise the unit goes back.
func (r *reservation) finish(committed bool) {
	if r == nil || r.done {
		return
	}
	r.done = true
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	r.c.inFlight--
	if committed {
		r.c.used++
	}
}

// op is the durable count of the reserved request, for its transaction.
func (r *reservation) op(tx *send.Tx) error {
	_, err := tx.Exec(qQuotaAdd, r.serviceID, r.week)
	return err
}
