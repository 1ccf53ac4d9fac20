package gateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Requests without a valid key are limited per client address. Keys carry
// 256 random bits, so guessing is hopeless; the limit is about cost and
// noise: an unknown key is a cache miss and so a database read, and a
// client stuck in a loop with a revoked key should be slowed, not served
// as fast as it can ask. It also gives 401 answers the same RateLimit
// headers as every other response.
const (
	unauthRequests = 60
	unauthWindow   = time.Minute
	// unauthMaxClients bounds the map; past it, idle (full) buckets are
	// dropped, which forgets nothing a client could exploit: a full bucket
	// is what a new one starts as.
	unauthMaxClients = 10_000
)

type unauthLimiter struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newUnauthLimiter() *unauthLimiter { return &unauthLimiter{m: map[string]*rate.Limiter{}} }

// take spends one token of the client's bucket; ok false means 429.
func (u *unauthLimiter) take(client string, now time.Time) (*limitHeaders, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	lim := u.m[client]
	if lim == nil {
		if len(u.m) >= unauthMaxClients {
			u.prune(now)
		}
		lim = rate.NewLimiter(rate.Limit(float64(unauthRequests)/unauthWindow.Seconds()), unauthRequests)
		lim.AllowN(now, 0) // anchor to the injected clock
		u.m[client] = lim
	}
	ok := lim.AllowN(now, 1)
	return bucketHeaders("unauthenticated", lim, unauthRequests, unauthWindow, now, ok), ok
}

func (u *unauthLimiter) prune(now time.Time) {
	for k, lim := range u.m {
		if lim.TokensAt(now) >= unauthRequests {
			delete(u.m, k)
		}
	}
	if len(u.m) >= unauthMaxClients { // every client busy: start over rather than grow
		clear(u.m)
	}
}
