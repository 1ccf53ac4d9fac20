package gateway

import (
	"strconv"
	"sync"
)

// inflight holds the Idempotency-Keys whose first request is between its
// replay look-up and its answer. Copies of it that arrive meanwhile (an
// integrator's client retrying a slow request) wait for it and are then
// answered as retries, instead of each holding a test-quota unit and a
// place in the pipeline until the first commits: 300 concurrent copies
// near the end of a week answered 43 of them 429, with a Retry-After of
// days, and refused a new send while units were left. Per process, as the
// quota counters are.
type inflight struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// claim makes this request the first of key, or returns a channel that is
// closed when the first is done.
func (f *inflight) claim(serviceID int64, mode, key string) (first bool, done <-chan struct{}, release func()) {
	k := strconv.FormatInt(serviceID, 10) + "\x00" + mode + "\x00" + key
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.m[k]; ok {
		return false, ch, nil
	}
	if f.m == nil {
		f.m = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	f.m[k] = ch
	return true, ch, func() {
		f.mu.Lock()
		delete(f.m, k)
		f.mu.Unlock()
		close(ch)
	}
}
