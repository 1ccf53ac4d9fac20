//go:build !linux

package send

import "os"

func datasync(f *os.File) error { return f.Sync() }
