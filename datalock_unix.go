//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the file in the data dir that a running server holds an
// exclusive lock on.
const lockFile = "sportello.lock"

// lockDataDir makes sure only one server uses a data dir: two would both
// run the delivery pipeline on the same outbox (citizens notified twice),
// keep their own weekly quotas and rate limits in memory (each letting a
// service send its full allowance) and their own key caches. The lock is
// an flock on DIR/sportello.lock, released by the kernel when the process
// ends however it ends, so a crash never leaves a stale lock behind. The
// other commands (admin, seed-demo, citizen-token) do not take it: they
// are meant to run beside the server.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another Sportello server (it holds %s): stop it first, or give this one its own --data", dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
