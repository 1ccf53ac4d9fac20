package gateway

import (
	"sync"
	"time"
)

// errorSampler lets one line of a repeated error through per interval and
// counts the rest. When the disk is full every send fails the same way:
// one ERROR line per request (thousands a second) said nothing more than
// the first, and filled the disk the logs share, if they do, faster still.
type errorSampler struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time // the last error logged
	latest     time.Time // the last error, logged or not
	suppressed int
}

// allow reports whether to log now and how many lines were held back
// since the last one logged.
func (s *errorSampler) allow(now time.Time) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = now
	if d := now.Sub(s.last); !s.last.IsZero() && d >= 0 && d < s.every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}

// latestError is when the last error was seen (zero if never).
func (s *errorSampler) latestError() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}
