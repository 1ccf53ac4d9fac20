package portal

import (
	"strings"
	"sync"
	"time"
)

// loginThrottle slows and then refuses repeated failed logins, per account
// (the e-mail typed, whether or not it exists, so the response reveals
// nothing) and per client IP. State is in memory: a restart forgives, which
// is acceptable for a single process and keeps login off the write path.
type loginThrottle struct {
	mu    sync.Mutex
	now   func() time.Time
	fails map[string][]time.Time
	// sleep is how a slowed attempt waits; tests replace it.
	sleep func(time.Duration)
}

const (
	throttleWindow      = 15 * time.Minute
	throttleSlowAfter   = 3  // failures before answers are slowed
	throttleAccountMax  = 10 // failures per account before refusing
	throttleIPMax       = 30 // failures per IP before refusing
	throttleMaxDelay    = 4 * time.Second
	throttleStepDelay   = 500 * time.Millisecond
	throttleMaxTrackers = 100_000 // bound memory under a spray attack
)

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{now: now, fails: map[string][]time.Time{}, sleep: time.Sleep}
}

func accountKey(email string) string { return "a:" + strings.ToLower(strings.TrimSpace(email)) }
func ipKey(ip string) string         { return "i:" + ip }

// recent returns the failures of key inside the window (caller holds mu).
func (t *loginThrottle) recent(key string) []time.Time {
	cut := t.now().Add(-throttleWindow)
	fs := t.fails[key]
	i := 0
	for i < len(fs) && fs[i].Before(cut) {
		i++
	}
	if i == len(fs) {
		delete(t.fails, key)
		return nil
	}
	fs = fs[i:]
	t.fails[key] = fs
	return fs
}

// Check says whether an attempt may proceed. When refused, retry says when
// the oldest counted failure leaves the window. When allowed, delay is how
// long to slow the answer.
func (t *loginThrottle) Check(email, ip string) (allowed bool, delay, retry time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	acc, byIP := t.recent(accountKey(email)), t.recent(ipKey(ip))
	refuse := func(fs []time.Time, max int) (bool, time.Duration) {
		if len(fs) < max {
			return false, 0
		}
		return true, fs[len(fs)-max].Add(throttleWindow).Sub(t.now())
	}
	if r, d := refuse(acc, throttleAccountMax); r {
		return false, 0, d
	}
	if r, d := refuse(byIP, throttleIPMax); r {
		return false, 0, d
	}
	n := max(len(acc), len(byIP)/3)
	if n >= throttleSlowAfter {
		delay = min(time.Duration(n-throttleSlowAfter+1)*throttleStepDelay, throttleMaxDelay)
	}
	return true, delay, 0
}

// Fail records a failed attempt.
func (t *loginThrottle) Fail(email, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) > throttleMaxTrackers {
		t.fails = map[string][]time.Time{}
	}
	now := t.now()
	for _, k := range []string{accountKey(email), ipKey(ip)} {
		t.fails[k] = append(t.fails[k], now)
	}
}

// Succeed forgets the account's failures (the IP's stay: one good password
// must not reset a spray from that address).
func (t *loginThrottle) Succeed(email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, accountKey(email))
}
