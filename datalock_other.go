//go:build !unix

package main

// lockDataDir does nothing where flock is not available.
func lockDataDir(dir string) (release func(), err error) { return func() {}, nil }

// serverRunning cannot tell without flock; a command then migrates as a
// start does.
func serverRunning(dir string) (bool, error) { return false, nil }
