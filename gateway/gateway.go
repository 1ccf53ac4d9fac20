// Package gateway is Sportello's IO-compatible HTTP API (/api/v1): API-key
// authentication from an in-memory cache of principals, authorized CIDRs,
// test-mode recipients and the durable weekly quota, the live token bucket,
// rate-limit headers, problem+json errors and usage metering. The send
// itself (validation, durable insert) is messaging/send.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"sportello/db"
	"sportello/gateway/clientip"
	"sportello/messaging/send"
	"sportello/templates/i18n"
)

// Config is what the gateway needs from the outside.
type Config struct {
	DB       *db.DB
	Resolver clientip.Resolver
	Logger   *slog.Logger
	Now      func() time.Time
	Catalog  *i18n.Catalog
	// CacheTTL bounds how long a cached principal is trusted without
	// Invalidate (a safety net for changes made outside the portal).
	// Default 1 minute.
	CacheTTL time.Duration
	// FlushEvery is how often usage counts and last-used times are written.
	// Default 5 seconds.
	FlushEvery time.Duration
	// MaxBody bounds request bodies. Default 128 KiB (a 10,000-character
	// markdown is at most 40 KB of UTF-8).
	MaxBody int64
	// WeeklyQuota is the test-mode allowance per service. Default 1000.
	WeeklyQuota int
	// MaxBatch bounds a group-commit transaction. Default 512.
	MaxBatch int
}

// GCPercent is the garbage-collector setting the server runs with (unless
// GOGC is set): the live heap is small (tens of MB), so collecting at 4×
// instead of 2× of it costs little memory and gave 5–10 % more sends/s
// (docs/benchmarks.md).
const GCPercent = 400

// TuneRuntime applies GCPercent unless GOGC says otherwise; the server and
// the in-process benchmark call it first.
func TuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}

// Gateway serves /api/v1.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	cat      *i18n.Catalog
	gc       *send.Pipeline
	store    *send.Store
	auth     *authCache
	quota    *weeklyQuota
	buckets  *buckets
	unauth   *unauthLimiter
	meter    *meter
	inflight inflight // Idempotency-Keys whose first request is in flight
	// submitErrs samples the log of failed commits (a full disk fails
	// every send alike).
	submitErrs errorSampler
	ckpt       *checkpointer
	handler    http.Handler

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New builds the gateway and starts its group committer and meter flusher.
func New(cfg Config) (*Gateway, error) {
	if cfg.DB == nil || cfg.Catalog == nil {
		return nil, errors.New("gateway: DB and Catalog are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 5 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 128 << 10
	}
	if cfg.WeeklyQuota <= 0 {
		cfg.WeeklyQuota = DefaultWeeklyQuota
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	ctx := context.Background()
	g := &Gateway{cfg: cfg, log: cfg.Logger, now: cfg.Now, cat: cfg.Catalog,
		stop: make(chan struct{}), done: make(chan struct{}), submitErrs: errorSampler{every: time.Second}}
	var err error
	if g.gc, err = send.NewPipeline(cfg.DB, cfg.MaxBatch, cfg.Logger); err != nil {
		return nil, err
	}
	if g.store, err = send.NewStore(ctx, cfg.DB, g.gc, cfg.Now); err != nil {
		g.gc.Close()
		return nil, err
	}
	if err := g.gc.Prepare(ctx, qQuotaAdd); err != nil {
		g.gc.Close()
		return nil, fmt.Errorf("gateway: prepare: %w", err)
	}
	g.auth = newAuthCache(cfg.DB, cfg.CacheTTL, cfg.Now)
	g.quota = newWeeklyQuota(cfg.DB, cfg.WeeklyQuota)
	g.buckets = newBuckets()
	g.unauth = newUnauthLimiter()
	g.meter = newMeter()
	g.handler = g.routes()
	if err := g.startCheckpointer(ctx); err != nil {
		g.gc.Close()
		return nil, fmt.Errorf("gateway: checkpointer: %w", err)
	}
	go g.flushLoop()
	return g, nil
}

// Handler serves the API; mount it so it sees full paths (/api/v1/...).
func (g *Gateway) Handler() http.Handler { return g.handler }

// Invalidate drops the cached principals of a service (keys rotated or
// revoked, settings changed): the next request reloads them.
func (g *Gateway) Invalidate(serviceID int64) {
	g.auth.invalidate(func(s *service) bool { return s.id == serviceID })
}

// InvalidateInstitution drops the cached principals of every service of
// an institution (suspension, reactivation).
func (g *Gateway) InvalidateInstitution(instID int64) {
	g.auth.invalidate(func(s *service) bool { return s.institutionID == instID })
}

// Close writes pending usage and last-used times and stops the committer.
// Call it after the HTTP server stopped taking requests.
func (g *Gateway) Close(ctx context.Context) error {
	var err error
	g.closeOnce.Do(func() {
		close(g.stop)
		select {
		case <-g.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if ferr := g.flush(ctx); ferr != nil {
			err = errors.Join(err, ferr)
		}
		g.gc.Close()
		g.stopCheckpointer(ctx)
	})
	return err
}

func (g *Gateway) flushLoop() {
	defer close(g.done)
	everyTick(g.log, "usage flush", g.cfg.FlushEvery, g.stop, func() {
		if err := g.flush(context.Background()); err != nil {
			g.log.Error("gateway: flush usage", "err", err)
		}
	})
}

func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/messages/{fiscal_code}", g.authed(g.postMessage))
	mux.Handle("POST /api/v1/messages", g.authed(g.postMessage))
	mux.Handle("GET /api/v1/messages/{fiscal_code}/{id}", g.authed(g.getMessage))
	mux.Handle("GET /api/v1/profiles/{fiscal_code}", g.authed(g.getProfile))
	mux.Handle("POST /api/v1/profiles", g.authed(g.getProfile))
	mux.HandleFunc("GET /api/v1/openapi.yaml", serveOpenAPI)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		// This catch-all matches every method, so the mux's own 405 never
		// happens: a known path with the wrong method is told so here.
		if allow := allowedMethods(mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			g.problem(w, r, nil, http.StatusMethodNotAllowed, "method_not_allowed", nil, allow)
			return
		}
		g.problem(w, r, nil, http.StatusNotFound, "not_found", nil)
	})
	return apiHeaders(mux)
}

// apiHeaders sets what every API answer carries: its bodies hold fiscal
// codes and message content, so no shared cache may keep them, and a
// browser that is shown one must not guess another type than the one
// declared (the OpenAPI document sets its own caching).
func apiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Cache-Control"] = noStore
		next.ServeHTTP(w, r)
	})
}

// Shared header values: set as slices, so the hot path allocates none.
var (
	nosniff = []string{"nosniff"}
	noStore = []string{"no-store"}
)

// allowedMethods lists the methods mux serves at r's path other than the
// catch-all, or "" when the path is unknown.
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/api/v1/" && pattern != "" {
			allow = append(allow, m)
			if m == http.MethodGet { // a GET route answers HEAD too
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return strings.Join(allow, ", ")
}
