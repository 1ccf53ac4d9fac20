package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sportello/db"
	"sportello/gateway"
	"sportello/gateway/clientip"
	"sportello/gateway/demo"
	"sportello/messaging/channels"
	"sportello/messaging/citizen"
	"sportello/messaging/delivery"
	"sportello/messaging/fiscalcode"
	"sportello/policies"
	"sportello/portal"
	"sportello/templates/i18n"
)

// shutdownGrace bounds how long in-flight requests may take after SIGTERM.
// A variable so a test can shorten it.
var shutdownGrace = 15 * time.Second

// app is the running Sportello: every subsystem wired together.
type app struct {
	cfg     *Config
	db      *db.DB
	log     *slog.Logger
	handler http.Handler
	// background jobs started by serve and stopped before the DB closes.
	background []func(ctx context.Context) error
	closers    []func(ctx context.Context) error
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// build opens the database and assembles the portal, gateway and messaging.
func build(ctx context.Context, cfg *Config) (*app, error) {
	log := newLogger(cfg.LogLevel)
	keys, err := loadKeys(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.Keys = keys
	d, err := openDB(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, db: d, log: log}
	catalog, err := i18n.Load()
	if err != nil {
		d.Close()
		return nil, err
	}
	enf, err := policies.New()
	if err != nil {
		d.Close()
		return nil, err
	}
	resolver := clientip.Resolver{Trusted: cfg.TrustedProxies}
	fail := func(err error) (*app, error) {
		_ = a.close(context.Background())
		return nil, err
	}

	gw, err := gateway.New(gateway.Config{DB: d, Resolver: resolver, Logger: log, Catalog: catalog})
	if err != nil {
		return fail(err)
	}
	a.closers = append(a.closers, gw.Close)

	dl, err := delivery.New(delivery.Config{
		DB: d, Logger: log, Catalog: catalog, SMTPURL: cfg.SMTPURL, BaseURL: cfg.BaseURL,
		PushURL: cfg.PushURL, PushSecret: keys.Push, Retention: cfg.Retention,
	})
	if err != nil {
		return fail(err)
	}
	a.background = append(a.background, dl.Run)

	cz, err := citizen.New(citizen.Config{
		DB: d, Logger: log, TokenKey: keys.CitizenToken, EmailKey: keys.EmailLink, Dev: cfg.Dev, Catalog: catalog, BaseURL: cfg.BaseURL,
		Secure: strings.HasPrefix(cfg.BaseURL, "https://"),
	})
	if err != nil {
		return fail(err)
	}

	var mailer channels.Mailer
	if cfg.SMTPURL != "" {
		if mailer, err = channels.ParseSMTPURL(cfg.SMTPURL, ""); err != nil {
			return fail(err)
		}
	}
	p, err := portal.New(ctx, portal.Deps{
		DB: d, Enforcer: enf, Catalog: catalog, Logger: log, Resolver: resolver,
		BaseURL: cfg.BaseURL, SessionHashKey: keys.SessionHash, SessionBlockKey: keys.SessionBlock,
		Mailer: mailer,
		Hooks: portal.Hooks{
			InstitutionChanged: gw.InvalidateInstitution,
			ServiceChanged:     gw.Invalidate,
		},
	})
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/readyz", &readiness{db: d, dataDir: cfg.DataDir, minFree: readyMinFree,
		lastSendFailure: gw.LastSubmitFailure, now: time.Now})
	mux.Handle("/api/v1/", gw.Handler())
	mux.Handle("/citizen/", cz.Handler())
	mux.Handle("/", p.Handler())
	a.handler = mux
	return a, nil
}

// close stops background work and closes the database.
func (a *app) close(ctx context.Context) error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	errs = append(errs, a.db.Close())
	return errors.Join(errs...)
}

// ensureFirstAdmin creates the platform admin on the very first start and
// returns the password to print once ("" when nothing was created).
func ensureFirstAdmin(ctx context.Context, cfg *Config, d *db.DB) (string, error) {
	ok, err := portal.HasPlatformAdmin(ctx, d)
	if err != nil || ok {
		return "", err
	}
	pw := cfg.AdminPassword
	if p := portal.PasswordProblem(pw, cfg.AdminEmail); pw != "" && p != "" {
		// No form checks this one: the rules every other password follows
		// apply here, where it is used (it matters on the first start only).
		return "", fmt.Errorf("SPORTELLO_ADMIN_PASSWORD is refused by the password rules (%s): at least %d characters, not a common password, not part of the email", p, portal.MinPasswordLength)
	}
	if pw == "" {
		pw = portal.NewPassword()
	}
	if err := portal.CreatePlatformAdmin(ctx, d, cfg.AdminEmail, pw); err != nil {
		return "", err
	}
	if cfg.AdminPassword != "" {
		return "(the password in SPORTELLO_ADMIN_PASSWORD)", nil
	}
	return pw, nil
}

func serve(ctx context.Context, cfg *Config) error {
	gateway.TuneRuntime() // GOGC, when set, wins
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// Listen before anything is created: a start that fails on a busy
	// port after creating the first admin would never print that admin's
	// one-time password (the next start finds an admin and says nothing).
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // after a failed start; srv.Serve closes it otherwise
	// The first admin is created before the portal loads roles.
	d0, err := openDB(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	firstPassword, err := ensureFirstAdmin(ctx, cfg, d0)
	d0.Close()
	if err != nil {
		return err
	}
	a, err := build(ctx, cfg)
	if err != nil {
		if firstPassword != "" {
			// The admin exists now: this is the only time its password
			// can be shown.
			fmt.Printf("First start: platform admin %s created, password %s\n(shown only now, although the server did not start; see the error below)\n", cfg.AdminEmail, firstPassword)
		}
		return err
	}
	url := cfg.BaseURL
	if strings.HasSuffix(cfg.Addr, ":0") { // tests ask for any free port
		url = "http://" + ln.Addr().String()
	}
	fmt.Printf("Sportello is running: open %s\n", url)
	if firstPassword != "" {
		fmt.Printf("First start: platform admin %s, password %s\n(shown only now; change it from \"Your account\" after signing in)\n", cfg.AdminEmail, firstPassword)
	} else {
		fmt.Printf("Sign in as a platform admin (first admin: %s); add one with: go run . admin create --email X%s\n", cfg.AdminEmail, dataArg(cfg.DataDir))
	}
	if cfg.PushURL != "" {
		// Not the URL: it may carry credentials.
		fmt.Printf("Push notifications are signed with the push key (not the signing key); give the receiver its copy: sportello push-secret --data %s\n", cfg.DataDir)
	}
	if cfg.Dev {
		fmt.Printf("Development mode: test citizen login at %s/citizen/login\n", url)
	}

	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	bgDone := make(chan error, len(a.background))
	for _, job := range a.background {
		go func() { bgDone <- job(bgCtx) }()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		a.log.Info("shutting down: finishing in-flight requests")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err = srv.Shutdown(sctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			// A request still running after the grace (a client that
			// stopped sending half way, a long export) is cut off; that
			// is the stop the operator asked for, not a failure, so the
			// exit status stays 0 and the database is still closed
			// cleanly below. An unanswered send was not acknowledged:
			// the integrator retries it with its Idempotency-Key.
			a.log.Warn("shutting down: requests still running after the grace period, closing their connections", "grace", shutdownGrace)
			err = srv.Close()
		}
	}
	stopBackground()
	for range a.background {
		<-bgDone
	}
	cctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if cerr := a.close(cctx); cerr != nil {
		a.log.Error("close", "err", cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	a.log.Info("stopped")
	return err
}

// citizenTokenCommand prints a development bearer token for the citizen
// API, signed with the server's citizen-token key (so it needs the same
// data dir).
func citizenTokenCommand(args []string) error {
	fs := flag.NewFlagSet("citizen-token", flag.ContinueOnError)
	data := dataFlag(fs)
	rest, err := parseAnywhere(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("usage: sportello citizen-token [--data DIR] FISCALCODE")
	}
	cf := fiscalcode.Normalize(rest[0])
	if !fiscalcode.ValidPerson(cf) {
		return fmt.Errorf("%s is not a valid person fiscal code (check the last character)", rest[0])
	}
	keys, err := serverKeys(*data)
	if err != nil {
		return err
	}
	fmt.Println(citizen.IssueToken(keys.CitizenToken, cf, time.Now()))
	return nil
}

// pushSecretCommand prints the key a push webhook receiver verifies
// signatures with (64 hex characters: hex-decode them to get the 32-byte
// HMAC key). It is derived from the signing key, or SPORTELLO_PUSH_SECRET
// when set, and reveals nothing about the keys that sign citizen tokens.
func pushSecretCommand(args []string) error {
	fs := flag.NewFlagSet("push-secret", flag.ContinueOnError)
	data := dataFlag(fs)
	rest, err := parseAnywhere(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("usage: sportello push-secret [--data DIR]")
	}
	keys, err := serverKeys(*data)
	if err != nil {
		return err
	}
	fmt.Println(hex.EncodeToString(keys.Push))
	return nil
}

// serverKeys loads the keys of the server whose data dir is given, for
// commands that must sign or verify as it does. loadKeys would create new
// keys in a wrong or empty directory, and what the command prints would
// then not match the server's, with no hint why (unless the signing key
// comes from the environment, as the server's).
func serverKeys(data string) (Keys, error) {
	if _, err := os.Stat(filepath.Join(data, keysFile)); err != nil && os.Getenv("SPORTELLO_SIGNING_KEY") == "" {
		return Keys{}, fmt.Errorf("no Sportello keys in %s (start the server once with --data %s, or pass the server's --data)", data, data)
	}
	return loadKeys(data)
}

// parseAnywhere parses flags before and after the positional arguments,
// which it returns: the flag package stops at the first non-flag, so
// "citizen-token CF --data DIR" would otherwise be a usage error.
func parseAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// After "--" everything is positional (fs.Parse consumed the "--").
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// seedDemoCommand creates demo services (idempotent) and prints their keys.
func seedDemoCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seed-demo", flag.ContinueOnError)
	data := dataFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := openBesideServer(ctx, *data)
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := demo.Seed(ctx, d)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}

// dataArg is the --data flag a printed command needs to reach this data
// directory: none for the default, which the commands use anyway (a
// command run without it on another directory would quietly create a new,
// empty database under ./data).
func dataArg(dir string) string {
	if filepath.Clean(dir) == filepath.Clean("./data") {
		return ""
	}
	return " --data " + dir
}
