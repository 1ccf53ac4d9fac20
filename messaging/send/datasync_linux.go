package send

import (
	"os"
	"syscall"
)

// datasync flushes a file's data (and the size, which reading it back
// needs) without forcing a journal commit for timestamps: fdatasync, as
// SQLite itself uses on Linux.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
