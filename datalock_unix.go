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
// are meant to run beside the server (serverRunning tells them one is).
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

// serverRunning reports whether a server holds dir's lock. It takes the
// lock and gives it back at once: a command beside the server must not
// keep one from starting.
func serverRunning(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no server ever ran here
	}
	if err != nil {
		return false, fmt.Errorf("lock data dir: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return false, nil // closing the file releases the lock
}
