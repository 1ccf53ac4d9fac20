package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sportello/db"
	"sportello/portal"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	t.Setenv("SPORTELLO_ADDR", "")
	c, err := parseServeConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || c.BaseURL != "http://localhost:8080" || c.AdminEmail != "admin@localhost" {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range [][]string{{"--addr", "8080"}, {"extra"}} {
		if _, err := parseServeConfig(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	t.Setenv("SPORTELLO_BASE_URL", "ftp://x")
	if _, err := parseServeConfig(nil); err == nil {
		t.Error("ftp base URL accepted")
	}
	t.Setenv("SPORTELLO_BASE_URL", "")
	t.Setenv("SPORTELLO_ADDR", "127.0.0.1:9999")
	if c, _ := parseServeConfig([]string{"--addr", "127.0.0.1:7777"}); c.Addr != "127.0.0.1:7777" {
		t.Errorf("flag must win over env: %s", c.Addr)
	}
}

func TestKeysAreGeneratedOncePrivately(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, keysFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode %v (%v)", st.Mode().Perm(), err)
	}
	k2, _ := loadKeys(dir)
	if string(k1.SessionHash) != string(k2.SessionHash) || string(k1.Signing) != string(k2.Signing) || len(k1.SessionBlock) != 32 {
		t.Fatal("keys changed between starts")
	}
	t.Setenv("SPORTELLO_SIGNING_KEY", "zz")
	if _, err := loadKeys(dir); err == nil {
		t.Fatal("bad SPORTELLO_SIGNING_KEY accepted")
	}
}

func TestFirstAdminIsCreatedOnlyOnce(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := &Config{AdminEmail: "admin@localhost"}
	pw, err := ensureFirstAdmin(ctx, cfg, d)
	if err != nil || len(pw) < 16 {
		t.Fatalf("first start: %q %v", pw, err)
	}
	if pw2, err := ensureFirstAdmin(ctx, cfg, d); err != nil || pw2 != "" {
		t.Fatalf("second start created another admin: %q %v", pw2, err)
	}
	var n int
	_ = d.R.Get(&n, `SELECT count(*) FROM users WHERE is_platform_admin = 1`)
	if n != 1 {
		t.Fatalf("%d admins", n)
	}
	var hash string
	_ = d.R.Get(&hash, `SELECT password_hash FROM users`)
	if hash == pw || len(hash) < 60 {
		t.Fatal("password not hashed")
	}
}

// TestServeStartsAndStopsCleanly runs the real serve loop, waits for it to
// answer, then cancels (as SIGTERM does) and expects a clean return; a
// second start applies no migration again.
func TestServeStartsAndStopsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		cfg, err := parseServeConfig([]string{"--addr", addr, "--data", dir})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- serve(ctx, cfg) }()
		var ok bool
		for i := 0; i < 100 && !ok; i++ {
			if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
				res.Body.Close()
				ok = res.StatusCode == 200
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatal("server did not answer /healthz")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
	d, err := db.Open(context.Background(), filepath.Join(dir, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	applied, err := d.AppliedMigrations(context.Background())
	if err != nil || len(applied) == 0 {
		t.Fatalf("migrations: %v %v", applied, err)
	}
}

// "admin reset-link" issues a link for an existing user (the way to help
// someone locked out without SMTP) and refuses unknown addresses.
func TestResetLinkCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := db.Open(ctx, filepath.Join(dir, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := portal.CreatePlatformAdmin(ctx, d, "anna@comune.example.it", portal.NewPassword()); err != nil {
		t.Fatal(err)
	}
	d.Close()

	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err = run(ctx, []string{"admin", "reset-link", "--email", "Anna@comune.example.it", "--data", dir})
	w.Close()
	os.Stdout = stdout
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "/password/reset/") {
		t.Fatalf("no link printed: %q", out)
	}
	if err := run(ctx, []string{"admin", "reset-link", "--email", "nessuno@example.it", "--data", dir}); err == nil {
		t.Fatal("a link for an unknown address")
	}
	d, err = db.Open(ctx, filepath.Join(dir, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := d.R.Get(&n, `SELECT count(*) FROM password_resets WHERE used_at IS NULL`); err != nil || n != 1 {
		t.Fatalf("%d open reset links (%v), want 1", n, err)
	}
}

// The citizen token is signed with the server's keys, so the command takes
// --data before or after the fiscal code, and refuses a directory without
// keys instead of signing with new ones the server would reject.
func TestCitizenTokenTakesFlagsInAnyOrderAndNeedsTheServersKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := loadKeys(dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"citizen-token", "--data", dir, "RSSMRA85T10A562S"},
		{"citizen-token", "RSSMRA85T10A562S", "--data", dir},
	} {
		r, w, _ := os.Pipe()
		stdout := os.Stdout
		os.Stdout = w
		err := run(ctx, args)
		w.Close()
		os.Stdout = stdout
		out, _ := io.ReadAll(r)
		if err != nil || len(strings.TrimSpace(string(out))) < 20 {
			t.Fatalf("%v: %v, printed %q", args, err, out)
		}
	}
	empty := filepath.Join(t.TempDir(), "nothing")
	err := run(ctx, []string{"citizen-token", "RSSMRA85T10A562S", "--data", empty})
	if err == nil || !strings.Contains(err.Error(), "no Sportello keys") {
		t.Fatalf("empty data dir: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(empty, keysFile)); statErr == nil {
		t.Fatal("keys were created in the wrong directory")
	}
	// A server whose signing key comes from the environment has no keys
	// file to find: the same environment signs the token.
	t.Setenv("SPORTELLO_SIGNING_KEY", strings.Repeat("ab", 32))
	if err := run(ctx, []string{"citizen-token", "--data", filepath.Join(t.TempDir(), "env"), "RSSMRA85T10A562S"}); err != nil {
		t.Fatalf("signing key from the environment: %v", err)
	}
}

// Flags are read on both sides of the positional arguments, and nothing
// after "--" is a flag.
func TestParseAnywhere(t *testing.T) {
	for _, c := range []struct {
		args []string
		data string
		pos  string
	}{
		{[]string{"--data", "d", "CF"}, "d", "CF"},
		{[]string{"CF", "--data", "d"}, "d", "CF"},
		{[]string{"A", "--data", "d", "B"}, "d", "A B"},
		{[]string{"--", "X", "--data", "d"}, "./data", "X --data d"},
		{[]string{"A", "--", "--data", "d"}, "./data", "A --data d"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		data := fs.String("data", "./data", "")
		pos, err := parseAnywhere(fs, c.args)
		if err != nil || *data != c.data || strings.Join(pos, " ") != c.pos {
			t.Errorf("%q: data %q positional %q (%v), want %q %q", c.args, *data, pos, err, c.data, c.pos)
		}
	}
}

// freeAddr returns a local address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs serve on dir until the test ends and waits for /healthz.
func startServe(t *testing.T, dir string) {
	t.Helper()
	addr := freeAddr(t)
	cfg, err := parseServeConfig([]string{"--addr", addr, "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for i := 0; i < 200; i++ {
		if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not answer /healthz")
}

// TestSecondServerOnSameDataDirIsRefused: two servers on one data dir
// would both deliver the same outbox (citizens notified twice) and each
// keep its own quotas and rate limits in memory; the second must refuse
// to start, saying why, while the other commands still work beside it.
func TestSecondServerOnSameDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	startServe(t, dir)

	cfg, err := parseServeConfig([]string{"--addr", freeAddr(t), "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = serve(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "in use by another Sportello server") {
		t.Fatalf("second server on the same data dir: %v, want a refusal", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the second server ran until stopped instead of refusing at once")
	}
	// Commands meant to run beside the server are not locked out.
	if err := run(context.Background(), []string{"admin", "create", "--email", "anna@example.it", "--data", dir}); err != nil {
		t.Fatalf("admin create beside the server: %v", err)
	}
}

// TestBackupWhileServing: `sportello backup` copies a running server's
// data dir into a new dir that opens as a data dir of its own, with the
// same rows and keys, readable by the owner only; it refuses to overwrite
// an earlier backup.
func TestBackupWhileServing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := run(ctx, []string{"seed-demo", "--data", dir}); err != nil {
		t.Fatal(err)
	}
	startServe(t, dir)
	out := filepath.Join(t.TempDir(), "backup-1")
	if err := run(ctx, []string{"backup", "--data", dir, out}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	for _, name := range []string{"sportello.db", keysFile} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s in the backup: %v (%v), want mode 0600", name, st, err)
		}
	}
	orig, _ := os.ReadFile(filepath.Join(dir, keysFile))
	copied, _ := os.ReadFile(filepath.Join(out, keysFile))
	if string(orig) != string(copied) {
		t.Fatal("keys.json differs in the backup")
	}
	b, err := db.Open(ctx, filepath.Join(out, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var services, admins int
	_ = b.R.Get(&services, `SELECT count(*) FROM services`)
	_ = b.R.Get(&admins, `SELECT count(*) FROM users WHERE is_platform_admin = 1`)
	if services < 2 || admins != 1 {
		t.Fatalf("backup holds %d services and %d admins", services, admins)
	}
	if err := run(ctx, []string{"backup", "--data", dir, out}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second backup into the same dir: %v", err)
	}
}

// TestFirstStartOnBusyPortCreatesNoAdmin: a first start that cannot
// listen must not create the first admin, or its one-time password is
// never shown (the next start finds an admin and prints none).
func TestFirstStartOnBusyPortCreatesNoAdmin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg, err := parseServeConfig([]string{"--addr", ln.Addr().String(), "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := serve(context.Background(), cfg); err == nil {
		t.Fatal("serve on a busy port succeeded")
	}
	d, err := db.Open(context.Background(), filepath.Join(dir, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ok, err := portal.HasPlatformAdmin(context.Background(), d); err != nil || ok {
		t.Fatalf("first admin created by a start that failed to listen (its password was never shown): %v %v", ok, err)
	}
}

// TestBadSettingsAreRefusedAtStart: values that used to be taken silently
// (development mode left off, a push URL no HTTP client can call, a first
// admin password no form would accept) or reported as another setting's
// fault (a port that is no number) stop the start with their name.
func TestBadSettingsAreRefusedAtStart(t *testing.T) {
	for _, c := range []struct{ env, val, want string }{
		{"SPORTELLO_DEV", "true", "SPORTELLO_DEV"},
		{"SPORTELLO_PUSH_URL", "ftp://push.example.it/x", "SPORTELLO_PUSH_URL"},
		{"SPORTELLO_ADDR", "127.0.0.1:abc", "port must be a number"},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.val)
			if _, err := parseServeConfig(nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s=%s: %v, want an error naming %q", c.env, c.val, err, c.want)
			}
		})
	}
	t.Setenv("SPORTELLO_DEV", "1")
	if c, err := parseServeConfig(nil); err != nil || !c.Dev {
		t.Fatalf("SPORTELLO_DEV=1: %+v %v", c, err)
	}

	t.Setenv("SPORTELLO_SESSION_KEY", strings.Repeat("z", 128))
	if _, err := loadKeys(t.TempDir()); err == nil || !strings.Contains(err.Error(), "SPORTELLO_SESSION_KEY") {
		t.Fatalf("non-hex SPORTELLO_SESSION_KEY: %v, want an error naming it", err)
	}

	d, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := &Config{AdminEmail: "admin@localhost", AdminPassword: "short"}
	if _, err := ensureFirstAdmin(context.Background(), cfg, d); err == nil || !strings.Contains(err.Error(), "SPORTELLO_ADMIN_PASSWORD") {
		t.Fatalf("first admin with password %q: %v, want a refusal", cfg.AdminPassword, err)
	}
	if ok, _ := portal.HasPlatformAdmin(context.Background(), d); ok {
		t.Fatal("an admin was created with a password the rules refuse")
	}
}

// TestLockedDatabaseSaysSo: when another process holds the database's
// lock (a sqlite3 shell left in a transaction), the start fails naming
// the file and the likely cause, not with a bare "database is locked".
func TestLockedDatabaseSaysSo(t *testing.T) {
	old := db.BusyTimeout
	db.BusyTimeout = 200 * time.Millisecond
	t.Cleanup(func() { db.BusyTimeout = old })
	dir := t.TempDir()
	d, err := openDB(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	other, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec(`BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	defer other.Exec(`ROLLBACK`)
	_, err = openDB(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), filepath.Join(dir, "sportello.db")) {
		t.Fatalf("open of a locked database: %v", err)
	}
}

// The commands a start prints reach the server's data directory: "admin
// create" without --data on another directory quietly made a new, empty
// database under ./data.
func TestPrintedCommandsNameTheDataDir(t *testing.T) {
	for dir, want := range map[string]string{"./data": "", "data": "", "data/": "", "/srv/sportello": " --data /srv/sportello"} {
		if got := dataArg(dir); got != want {
			t.Errorf("dataArg(%q) = %q, want %q", dir, got, want)
		}
	}
}

// A request still running when the shutdown grace ends (here a client
// that sent half a request line) is cut off, and the stop is still a
// clean one: serve returns nil, so the process exits 0, as a supervisor
// expects after the stop it asked for.
func TestStopPastTheGraceIsClean(t *testing.T) {
	defer func(g time.Duration) { shutdownGrace = g }(shutdownGrace)
	shutdownGrace = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := parseServeConfig([]string{"--addr", addr, "--data", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg) }()
	var conn net.Conn
	for i := 0; i < 100; i++ {
		if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if conn, err = net.Dial("tcp", addr); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil { // no blank line: still reading headers
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server has read the first bytes: the connection is active
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after a stop past the grace", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// A command run beside a server never migrates the database under it: a
// newer binary's admin create, against a server still at an older schema
// (here: the server's database with its newest migration unrecorded),
// is refused with what to do, and records nothing.
func TestCommandBesideAnOlderServerDoesNotMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	startServe(t, dir)
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "sportello.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var newest string
	if err := raw.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = ?`, newest); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"admin", "create", "--email", "anna@example.it", "--data", dir})
	if !errors.Is(err, db.ErrSchemaBehind) || !strings.Contains(err.Error(), "stop that server") {
		t.Fatalf("admin create beside an older server: %v", err)
	}
	var n int
	_ = raw.QueryRow(`SELECT count(*) FROM users WHERE email = 'anna@example.it'`).Scan(&n)
	if n != 0 {
		t.Fatal("the refused command created the admin")
	}
	var back int
	_ = raw.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = ?`, newest).Scan(&back)
	if back != 0 {
		t.Fatal("the command beside the server applied a migration")
	}
}
