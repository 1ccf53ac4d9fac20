package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"sportello/db"
	"sportello/gateway/clientip"
	"sportello/policies"
	"sportello/portal"
	"sportello/templates/i18n"
)

// shutdownGrace bounds how long in-flight requests may take after SIGTERM.
const shutdownGrace = 15 * time.Second

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
	hooks := portal.Hooks{}
	p, err := portal.New(ctx, portal.Deps{
		DB: d, Enforcer: enf, Catalog: catalog, Logger: log, Resolver: resolver,
		BaseURL: cfg.BaseURL, SessionHashKey: keys.SessionHash, SessionBlockKey: keys.SessionBlock,
		Hooks: hooks,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	mux := http.NewServeMux()
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
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.close(context.Background())
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
		fmt.Printf("Sign in as a platform admin (first admin: %s); add one with: go run . admin create --email X\n", cfg.AdminEmail)
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

func citizenTokenCommand(args []string) error {
	return fmt.Errorf("citizen-token: not available in this build yet")
}

func seedDemoCommand(ctx context.Context, args []string) error {
	return fmt.Errorf("seed-demo: not available in this build yet")
}
