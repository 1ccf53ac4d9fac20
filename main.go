// Command sportello is the onboarding portal and messaging gateway for
// public services: one binary, one embedded SQLite database.
//
//	sportello [serve] [--addr :8080] [--data ./data] [--dev]
//	sportello admin create --email X [--data DIR]
//	sportello admin reset-link --email X [--data DIR]
//	sportello citizen-token [--data DIR] FISCALCODE
//	sportello push-secret [--data DIR]
//	sportello seed-demo [--data DIR]
//	sportello backup [--data DIR] BACKUP_DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"sportello/db"
	"sportello/portal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sportello:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseServeConfig(args)
		if err != nil {
			return err
		}
		return serve(ctx, cfg)
	case "admin":
		return adminCommand(ctx, args)
	case "citizen-token":
		return citizenTokenCommand(args)
	case "push-secret":
		return pushSecretCommand(args)
	case "seed-demo":
		return seedDemoCommand(ctx, args)
	case "backup":
		return backupCommand(ctx, args)
	case "help", "-h", "--help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  sportello [serve] [--addr :8080] [--data ./data] [--dev]   start the portal, gateway and delivery workers
  sportello admin create --email X [--data DIR]               add a platform admin, print a one-time password
  sportello admin reset-link --email X [--data DIR]           print a one-hour password reset link for a user
  sportello citizen-token [--data DIR] FISCALCODE             print a 24-hour test citizen token
  sportello push-secret [--data DIR]                          print the key push webhook receivers verify signatures with
  sportello seed-demo [--data DIR]                            create demo services and print their keys as JSON
  sportello backup [--data DIR] BACKUP_DIR                    copy the database and keys, while the server runs, into a new data dir`

func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", env("SPORTELLO_DATA", "./data"), "data directory (SPORTELLO_DATA)")
}

func openDB(ctx context.Context, dataDir string) (*db.DB, error) {
	return openWith(ctx, dataDir, db.Open)
}

// openBesideServer opens the database for a command other than the
// server (admin, seed-demo, reset links). With a server running on the
// data dir it never migrates: a newer binary would change the schema
// under the older server still using it, so it says to restart the
// server instead. With none running it migrates, as a start would.
func openBesideServer(ctx context.Context, dataDir string) (*db.DB, error) {
	running, err := serverRunning(dataDir)
	if err != nil {
		return nil, err
	}
	if running {
		return openWith(ctx, dataDir, db.OpenCurrent)
	}
	return openDB(ctx, dataDir)
}

func openWith(ctx context.Context, dataDir string, open func(context.Context, string) (*db.DB, error)) (*db.DB, error) {
	path := filepath.Join(dataDir, "sportello.db")
	d, err := open(ctx, path)
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		// Alone, "begin: database is locked" after ten seconds says
		// neither which file nor what to look for.
		return nil, fmt.Errorf("%s is locked by another process (a sqlite3 shell with an open transaction, a backup tool?); waited %s: %w", path, db.BusyTimeout, err)
	}
	return d, err
}

func adminCommand(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "reset-link") {
		return fmt.Errorf("usage: sportello admin create --email X [--data DIR] | sportello admin reset-link --email X [--data DIR]")
	}
	email, d, err := adminTarget(ctx, "admin "+args[0], args[1:])
	if err != nil {
		return err
	}
	defer d.Close()
	if args[0] == "reset-link" {
		return resetLinkCommand(ctx, d, email)
	}
	pw := portal.NewPassword()
	if err := portal.CreatePlatformAdmin(ctx, d, email, pw); err != nil {
		return err
	}
	fmt.Printf("Platform admin %s created.\nOne-time password (shown only now, change it after the first login): %s\n", email, pw)
	return nil
}

// adminTarget parses the --email and --data flags of an admin command and
// opens the database.
func adminTarget(ctx context.Context, name string, args []string) (string, *db.DB, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	email := fs.String("email", "", "email of the person")
	data := dataFlag(fs)
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	if *email == "" {
		return "", nil, fmt.Errorf("--email is required")
	}
	d, err := openBesideServer(ctx, *data)
	return *email, d, err
}

// resetLinkCommand prints a one-hour password reset link for a user: the
// way to help someone locked out when Sportello runs without SMTP (the web
// form never shows or stores the link).
func resetLinkCommand(ctx context.Context, d *db.DB, email string) error {
	// The link must point where the server answers: the same base URL
	// (SPORTELLO_BASE_URL, or derived from SPORTELLO_ADDR) as "serve".
	cfg, err := parseServeConfig(nil)
	if err != nil {
		return err
	}
	_, tok, err := portal.IssuePasswordReset(ctx, d, strings.ToLower(strings.TrimSpace(email)), time.Now().UTC(), "cli")
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no user with email %s", email)
	} else if err != nil {
		return err
	}
	fmt.Printf("Password reset link for %s (valid %s, usable once; give it to the person only):\n%s\n",
		email, portal.PasswordResetTTL, portal.ResetLink(cfg.BaseURL, tok))
	return nil
}
