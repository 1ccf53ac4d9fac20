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

// Attempt says whether an attempt may proceed and, when it may, counts it
// as a failure at once; Succeed takes it back. Counting before the
// password is checked is what makes the limit hold under concurrency: a
// check that only read the counter let 100 parallel guesses through,
// since none had failed yet when the others were checked. When refused,
// retry says when the oldest counted attempt leaves the window; when
// allowed, delay is how long to slow the answer.
func (t *loginThrottle) Attempt(email, ip string) (allowed bool, delay, retry time.Duration) {
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
	if len(t.fails) > throttleMaxTrackers {
		t.fails = map[string][]time.Time{}
	}
	now := t.now()
	for _, k := range []string{accountKey(email), ipKey(ip)} {
		t.fails[k] = append(t.fails[k], now)
	}
	return true, delay, 0
}

// Succeed forgets the account's failures and takes back the IP's count of
// this attempt (the IP's other failures stay: one good password must not
// reset a spray from that address).
func (t *loginThrottle) Succeed(email, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, accountKey(email))
	if fs := t.fails[ipKey(ip)]; len(fs) > 0 {
		t.fails[ipKey(ip)] = fs[:len(fs)-1]
	}
}

// Forget clears an account's failures (after a password reset, so a
// locked-out account may sign in again at once).
func (t *loginThrottle) Forget(email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, accountKey(email))
}
