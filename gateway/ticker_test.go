package gateway

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A background loop whose work panics logs it with the stack and runs
// again at the next tick instead of ending the process.
func TestEveryTickSurvivesAPanic(t *testing.T) {
	// Written only by the loop and read after it returned (<-done).
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	stop := make(chan struct{})
	calls := make(chan int, 10)
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		everyTick(log, "test loop", time.Millisecond, stop, func() {
			n++
			calls <- n
			if n == 1 {
				panic("first tick fails")
			}
		})
	}()
	for want := 1; want <= 3; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("call %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("loop stopped after %d calls", want-1)
		}
	}
	close(stop)
	<-done
	out := logs.String()
	if !strings.Contains(out, "first tick fails") || !strings.Contains(out, "ticker.go") || !strings.Contains(out, `loop="test loop"`) {
		t.Fatalf("log lacks the panic, its stack or the loop's name:\n%s", out)
	}
}
