package gateway

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// everyTick calls f every d until stop is closed. A panic in f is logged
// with its stack and the loop goes on at the next tick. The gateway's
// background loops write usage counts and checkpoint the WAL; a panic in
// either would otherwise end the whole process, the API, the portal and
// delivery with it, over work that can simply be tried again a tick later.
func everyTick(log *slog.Logger, name string, d time.Duration, stop <-chan struct{}, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := callRecovering(f); err != nil {
				log.Error("gateway: background loop panicked; it goes on at the next tick", "loop", name, "panic", err)
			}
		}
	}
}

// callRecovering runs f and returns its panic, with the stack, as an error.
func callRecovering(f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v\n%s", v, debug.Stack())
		}
	}()
	f()
	return nil
}
