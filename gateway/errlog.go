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
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many lines were held back
// since the last one logged.
func (s *errorSampler) allow(now time.Time) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := now.Sub(s.last); !s.last.IsZero() && d >= 0 && d < s.every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}
