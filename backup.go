package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"
)

// backupCommand copies a data dir, while the server runs, into a new
// directory that is itself a data dir (start a server with --data on it
// to restore): the database through VACUUM INTO, which reads one
// consistent snapshot (committed rows only, the WAL included) without
// stopping writers, and keys.json, without which a restored server would
// make new keys (every session, citizen token and push signature of the
// old ones refused). Copying sportello.db with cp while the server runs
// can miss what is still in the -wal file or catch a page half written.
// Both files are written 0600: they hold password hashes, fiscal codes
// and the server's secrets.
func backupCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	data := dataFlag(fs)
	rest, err := parseAnywhere(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("usage: sportello backup [--data DIR] BACKUP_DIR")
	}
	return backupDataDir(ctx, *data, rest[0])
}

func backupDataDir(ctx context.Context, dataDir, out string) error {
	src := filepath.Join(dataDir, "sportello.db")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("no Sportello database in %s: %w", dataDir, err)
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	dst := filepath.Join(out, "sportello.db")
	// VACUUM INTO wants a missing or empty file; creating it first gives
	// it mode 0600 (SQLite would use the umask's 0644) and refuses to
	// overwrite an earlier backup.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: give a new directory for each backup", dst)
	} else if err != nil {
		return err
	}
	f.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(dst)
		}
	}()
	// A plain read connection: no migrations, no write lock, so the
	// running server keeps accepting messages during the copy.
	conn, err := sqlx.Open("sqlite3", "file:"+src+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("backup %s: %w", src, err)
	}
	if err := checkBackup(ctx, dst); err != nil {
		return err
	}
	keys, err := os.ReadFile(filepath.Join(dataDir, keysFile))
	switch {
	case err == nil:
		if err := os.WriteFile(filepath.Join(out, keysFile), keys, 0o600); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		// Keys given by the environment only: nothing to copy.
	default:
		return err
	}
	ok = true
	fmt.Printf("Backup written to %s (database and keys, mode 0600); restore by starting Sportello with --data %s\n", out, out)
	return nil
}

// checkBackup reads the copy back: a backup that does not open is worse
// than none, since nobody finds out until the restore.
func checkBackup(ctx context.Context, path string) error {
	conn, err := sqlx.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer conn.Close()
	var check string
	if err := conn.GetContext(ctx, &check, `PRAGMA quick_check`); err != nil || check != "ok" {
		return fmt.Errorf("backup %s fails its check (%q, %v)", path, check, err)
	}
	return nil
}
