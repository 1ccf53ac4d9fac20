package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"sportello/messaging/send"
)

// meter gathers usage counts and last-used times in memory; flush writes
// them in one transaction every few seconds instead of one write per
// request.
type meter struct {
	mu       sync.Mutex
	usage    map[usageKey]int64
	lastUsed map[int64]time.Time
}

type usageKey struct {
	serviceID int64
	day       int64 // UsageDay as days since 1970-01-01, formatted only at flush
	mode      string
	outcome   string
}

func newMeter() *meter {
	return &meter{usage: map[usageKey]int64{}, lastUsed: map[int64]time.Time{}}
}

// outcome classifies a status as the usage chart does.
func outcome(status int) string {
	switch {
	case status == 429:
		return "throttled"
	case status >= 500:
		return "server_error"
	case status >= 400:
		return "client_error"
	default:
		return "accepted"
	}
}

func (m *meter) record(p *principal, status int, now time.Time) {
	k := usageKey{serviceID: p.svc.id, day: UsageDay(now).Unix() / 86400, mode: string(p.mode), outcome: outcome(status)}
	m.mu.Lock()
	m.usage[k]++
	if now.After(m.lastUsed[p.keyID]) {
		m.lastUsed[p.keyID] = now
	}
	m.mu.Unlock()
}

// UsageDay is the day a request at t counts on in usage_daily: its
// calendar date in Italy (as midnight UTC of that date, so it formats and
// adds days without zones). The weekly quota is per Italian week too, so
// a request at 00:30 on a Monday counts on Monday's bar, in the week whose
// quota it used (in UTC it was still Sunday). The portal's chart uses it
// to find today.
func UsageDay(t time.Time) time.Time {
	y, m, d := t.In(rome).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (m *meter) take() (map[usageKey]int64, map[int64]time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, l := m.usage, m.lastUsed
	m.usage, m.lastUsed = map[usageKey]int64{}, map[int64]time.Time{}
	return u, l
}

// putBack returns counts whose write failed, so the next flush retries them.
func (m *meter) putBack(u map[usageKey]int64, l map[int64]time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, n := range u {
		m.usage[k] += n
	}
	for id, t := range l {
		if t.After(m.lastUsed[id]) {
			m.lastUsed[id] = t
		}
	}
}

// flush writes the gathered counts through the group committer, so it
// shares a transaction with sends instead of queueing for the writer.
func (g *Gateway) flush(ctx context.Context) error {
	u, l := g.meter.take()
	if len(u) == 0 && len(l) == 0 {
		return nil
	}
	// Until the write commits the counts exist only here: a failed write,
	// and a panic too, gives them back for the next flush.
	written := false
	defer func() {
		if !written {
			g.meter.putBack(u, l)
		}
	}()
	err := g.gc.Do(ctx, func(tx *send.Tx) error {
		for k, n := range u {
			if _, err := tx.Exec(`INSERT INTO usage_daily (service_id, day, mode, outcome, count) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (service_id, day, mode, outcome) DO UPDATE SET count = count + excluded.count`,
				k.serviceID, time.Unix(k.day*86400, 0).UTC().Format("2006-01-02"), k.mode, k.outcome, n); err != nil {
				return err
			}
		}
		for id, t := range l {
			if _, err := tx.Exec(`UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
				t.UTC(), id, t.UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gateway: write usage: %w", err)
	}
	written = true
	return nil
}
