//go:build !unix

package main

// lockDataDir does nothing where flock is not available.
func lockDataDir(dir string) (release func(), err error) { return func() {}, nil }
