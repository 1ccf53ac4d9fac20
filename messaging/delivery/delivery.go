// Package delivery is the engine after a message is accepted: it claims
// outbox rows, decides from the citizen's profile and preferences (exactly
// as IO does, see messaging/preferences) whether the message enters the
// inbox and which notices go out, and records the outcome, deleting the
// outbox row in the same transaction. A notifier sends e-mail and push
// notices with retries; a retention job deletes message content once it is
// no longer needed.
//
// Every effect is idempotent or at-least-once with a stable id: a row whose
// outcome was not recorded (a crash, a failed write) stays in the outbox
// and is processed again, the inbox primary key keeps a message from
// entering twice, and notification rows are inserted once per (message,
// channel).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"sportello/db"
	"sportello/messaging/channels"
	"sportello/templates/i18n"
)

// Config is what the pipeline needs; zero values get sensible defaults.
type Config struct {
	DB      *db.DB
	Logger  *slog.Logger
	Catalog *i18n.Catalog // e-mail texts; loaded when nil
	Now     func() time.Time

	// SMTPURL is smtp://user:pass@host:port (or smtps://); empty means
	// e-mail notices are kept in mail_outbox for platform admins to read,
	// and stay THROTTLED (not sent) until a later start with SMTP sends them
	// or their time to live ends.
	SMTPURL  string
	MailFrom string // sender address when the URL has no ?from=
	// BaseURL is the public address, used in e-mail notices.
	BaseURL string
	// PushURL is the push webhook; empty disables push notices.
	PushURL    string
	PushSecret []byte
	HTTPClient *http.Client

	// BatchSize is outbox rows per batch (default 128). Its outcome
	// transaction holds the single writer the gateway's sends also need:
	// 500 rows gave the same throughput but send p99 23–28 ms instead of
	// 14–17 ms (docs/benchmarks.md).
	BatchSize    int
	PollInterval time.Duration // idle wait between outbox checks (default 25ms)
	// BatchPause is the wait after a batch that was not full. Under a
	// steady stream of sends this turns many small outcome transactions,
	// each taking the single writer, into a few large ones, leaving the
	// writer to the gateway; it adds at most this much to
	// accept-to-processed latency (default 50ms).
	BatchPause time.Duration

	RetryBase  time.Duration // first push/e-mail retry delay, doubled each time (default 5s)
	RetryMax   time.Duration // longest delay between retries (default 10m)
	NotifyPoll time.Duration // how often due notices are looked for (default 200ms)

	Retention         time.Duration // content kept this long after creation (default 720h)
	RetentionInterval time.Duration // how often the retention job runs (default 1m)
}

// Delivery is the running pipeline.
type Delivery struct {
	cfg          Config
	db           *db.DB
	log          *slog.Logger
	mailer       channels.Mailer // nil: mail goes to mail_outbox only
	push         *channels.Push  // nil: no push
	kick         chan struct{}
	nkick        map[string]chan struct{} // per notice channel: wakes its loop
	catalog      *i18n.Catalog
	stmts        *statements
	stmtOnce     sync.Mutex    // guards stmts
	claims       claims        // outbox rows in a batch not yet recorded
	claimMu      sync.Mutex    // one claim at a time
	restartDelay time.Duration // wait before a panicked loop runs again
	// mailPausedUntil backs off queued mail after a temporary SMTP
	// failure (touched by the notifier goroutine only).
	mailPausedUntil time.Time
}

// New validates cfg and builds the pipeline; call Run to start it.
func New(cfg Config) (*Delivery, error) {
	if cfg.DB == nil {
		return nil, errors.New("delivery: DB is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 128
	}
	def(&cfg.PollInterval, 25*time.Millisecond)
	def(&cfg.BatchPause, 50*time.Millisecond)
	def(&cfg.RetryBase, 5*time.Second)
	def(&cfg.RetryMax, 10*time.Minute)
	def(&cfg.NotifyPoll, 200*time.Millisecond)
	def(&cfg.Retention, 720*time.Hour)
	def(&cfg.RetentionInterval, time.Minute)
	if cfg.Catalog == nil {
		c, err := i18n.Load()
		if err != nil {
			return nil, fmt.Errorf("delivery: %w", err)
		}
		cfg.Catalog = c
	}
	d := &Delivery{catalog: cfg.Catalog, cfg: cfg, db: cfg.DB, log: cfg.Logger, kick: make(chan struct{}, 1),
		nkick:        map[string]chan struct{}{ChannelEmail: make(chan struct{}, 1), ChannelWebhook: make(chan struct{}, 1)},
		restartDelay: 5 * time.Second}
	if cfg.SMTPURL != "" {
		s, err := channels.ParseSMTPURL(cfg.SMTPURL, cfg.MailFrom)
		if err != nil {
			return nil, fmt.Errorf("delivery: %w", err)
		}
		d.mailer = s
	}
	if cfg.PushURL != "" {
		if len(cfg.PushSecret) == 0 {
			return nil, errors.New("delivery: PushSecret is required with PushURL")
		}
		d.push = &channels.Push{URL: cfg.PushURL, Secret: cfg.PushSecret, Client: cfg.HTTPClient, Now: cfg.Now}
	}
	return d, nil
}

// SetMailer replaces the SMTP mailer (tests with a TLS-less server, or a
// different transport).
func (d *Delivery) SetMailer(m channels.Mailer) { d.mailer = m }

// Kick wakes idle workers at once (the send path may call it after a
// commit); without it they notice new rows within PollInterval.
func (d *Delivery) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Delivery) wakeNotifier() {
	for _, k := range d.nkick {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

func (d *Delivery) now() time.Time { return d.cfg.Now().UTC() }

// Run processes until ctx is cancelled. A batch being recorded then is
// finished; rows claimed but not yet recorded stay in the outbox for the
// next run.
func (d *Delivery) Run(ctx context.Context) error {
	if err := d.ensureStatements(ctx); err != nil {
		return err
	}
	if err := d.makeQueuedNoticesDue(ctx); err != nil {
		// Not fatal: those notices are tried at the end of their time to live.
		d.log.Error("delivery: making queued e-mail notices due", "err", err)
	}
	defer func() {
		d.stmtOnce.Lock()
		d.stmts.close()
		d.stmts = nil
		d.stmtOnce.Unlock()
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 3+len(noticeChannels))
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.supervise(ctx, name, f); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start("delivery", d.loop)
	// Each notice channel and the queued mail have a loop of their own: a
	// slow push receiver must not hold up e-mail, nor e-mail the pushes.
	for _, ch := range noticeChannels {
		start("notifier "+ch, func(ctx context.Context) error { return d.noticeLoop(ctx, ch) })
	}
	start("mail queue", d.mailLoop)
	start("retention", d.retention)
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// supervise runs f and, if it panics, logs the panic with its stack and
// starts it again after restartDelay. A panic in a background loop would
// otherwise end the whole process — the API and the portal with it — and,
// when a stored row causes it, again after every restart.
func (d *Delivery) supervise(ctx context.Context, name string, f func(context.Context) error) error {
	for {
		panicked, err := runRecovering(ctx, f)
		if !panicked {
			return err
		}
		d.log.Error("delivery: background loop panicked; restarting it", "loop", name, "panic", err)
		if !sleepCtx(ctx, d.restartDelay) {
			return nil
		}
	}
}

func runRecovering(ctx context.Context, f func(context.Context) error) (panicked bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			panicked, err = true, fmt.Errorf("%v\n%s", v, debug.Stack())
		}
	}()
	return false, f(ctx)
}

func collect(ch chan error) []error {
	var out []error
	for e := range ch {
		out = append(out, e)
	}
	return out
}

// sleep waits d or until ctx ends or a kick arrives; false means stop.
func (d *Delivery) sleep(ctx context.Context, dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-d.kick:
		return true
	case <-t.C:
		return true
	}
}
