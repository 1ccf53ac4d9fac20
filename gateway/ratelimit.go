package gateway

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// buckets holds the live token bucket of each service (IO: 150 requests per
// 5 seconds by default). A bucket is kept across cache invalidations and
// only retuned when the service's limit changes, so rotating a key does not
// refill it.
type buckets struct {
	mu sync.Mutex
	m  map[int64]*bucket
}

type bucket struct {
	lim      *rate.Limiter
	requests int
	window   time.Duration
}

func newBuckets() *buckets { return &buckets{m: map[int64]*bucket{}} }

func (b *buckets) get(s *service, now time.Time) *bucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[s.id]
	every := rate.Limit(float64(s.rateRequests) / s.rateWindow.Seconds())
	if bk == nil || bk.requests != s.rateRequests || bk.window != s.rateWindow {
		// A new or changed limit starts with a full bucket: an admin who
		// raises a limit means it to apply now.
		bk = &bucket{lim: rate.NewLimiter(every, s.rateRequests), requests: s.rateRequests, window: s.rateWindow}
		// Anchor the bucket to the injected clock rather than the wall clock.
		bk.lim.AllowN(now, 0)
		b.m[s.id] = bk
	}
	return bk
}

// limitHeaders are the rate-limit headers of one response, in both the IETF
// draft's structured form (RateLimit-Policy, RateLimit) and the older
// RateLimit-Limit/-Remaining/-Reset triple many clients still read.
type limitHeaders struct {
	policy    string // "live" or "weekly"
	limit     int
	window    time.Duration
	remaining int
	reset     time.Duration // until the allowance is whole again
	retry     time.Duration // for a 429: until one request is allowed
	unlimited bool
}

func (h *limitHeaders) set(w http.ResponseWriter) {
	if h == nil || h.unlimited {
		return
	}
	hd := w.Header()
	reset := ceilSeconds(h.reset)
	hd["Ratelimit-Policy"] = []string{`"` + h.policy + `";q=` + strconv.Itoa(h.limit) + `;w=` + strconv.Itoa(ceilSeconds(h.window))}
	hd["Ratelimit"] = []string{`"` + h.policy + `";r=` + strconv.Itoa(h.remaining) + `;t=` + strconv.Itoa(reset)}
	hd["Ratelimit-Limit"] = []string{strconv.Itoa(h.limit)}
	hd["Ratelimit-Remaining"] = []string{strconv.Itoa(h.remaining)}
	hd["Ratelimit-Reset"] = []string{strconv.Itoa(reset)}
	if h.retry > 0 {
		hd["Retry-After"] = []string{strconv.Itoa(max(1, ceilSeconds(h.retry)))}
	}
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// take spends one token of a live service's bucket; ok false means 429.
func (b *buckets) take(s *service, now time.Time) (*limitHeaders, bool) {
	if s.rateRequests <= 0 {
		return &limitHeaders{unlimited: true}, true // "no limit", as IO grants some groups
	}
	bk := b.get(s, now)
	ok := bk.lim.AllowN(now, 1)
	return bucketHeaders("live", bk.lim, bk.requests, bk.window, now, ok), ok
}

// bucketHeaders describes a token bucket just consulted at now; ok false
// adds the Retry-After of a 429.
func bucketHeaders(policy string, lim *rate.Limiter, requests int, window time.Duration, now time.Time, ok bool) *limitHeaders {
	tokens := lim.TokensAt(now)
	perToken := time.Duration(float64(time.Second) / float64(lim.Limit()))
	h := &limitHeaders{policy: policy, limit: requests, window: window,
		remaining: max(0, int(math.Floor(tokens))),
		reset:     time.Duration((float64(requests) - tokens) * float64(perToken))}
	if !ok {
		h.retry = time.Duration((1 - tokens) * float64(perToken))
		if h.retry <= 0 {
			h.retry = time.Second
		}
	}
	return h
}

func quotaHeaders(st quotaState, now time.Time, exhausted bool) *limitHeaders {
	h := &limitHeaders{policy: "weekly", limit: st.limit, window: 7 * 24 * time.Hour,
		remaining: st.remaining, reset: st.reset.Sub(now)}
	if exhausted {
		h.retry = h.reset
	}
	return h
}
