package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway"
	"sportello/gateway/demo"
	"sportello/templates/i18n"
)

// target is the server under test: the sportello binary as a subprocess
// (the real wiring of main.go) or, before main.go mounts the gateway, the
// gateway built here the way main.go will build it.
type target struct {
	mode      string
	base      string
	dataDir   string
	liveKey   string
	profileCF string
	testKey   string   // the test-mode service's key (weekly quota)
	testCFs   []string // its authorized test recipients
	pid       int
	stopFn    func()
	// pause and resume stop and restart the server around the prefill
	// (process mode); in-process the idle gateway stays up.
	pause, resume func() error
	d             *db.DB // in-process only
}

func (t *target) stop() {
	if t.stopFn != nil {
		t.stopFn()
	}
}

func startTarget(ctx context.Context, o options, dataDir string) (*target, error) {
	if o.mode == "auto" || o.mode == "process" {
		t, err := startProcess(ctx, dataDir)
		if err == nil {
			return t, nil
		}
		if o.mode == "process" {
			return nil, err
		}
		fmt.Printf("bench: process mode unavailable (%v); running the gateway in-process\n", err)
		_ = os.RemoveAll(dataDir)
	}
	return startInProcess(ctx, dataDir)
}

// seed creates the demo services and lifts the live service's rate limit
// (as a platform admin would for a bulk sender), so the benchmark measures
// the send path and not the token bucket refusing requests. The bucket is
// still consulted on every request.
func seed(ctx context.Context, d *db.DB) (demo.Result, error) {
	res, err := demo.Seed(ctx, d)
	if err != nil {
		return res, err
	}
	_, err = d.W.ExecContext(ctx, `UPDATE services SET rate_limit_requests = 1000000000, rate_limit_window_s = 1 WHERE public_id = ?`, demo.LiveServiceID)
	return res, err
}

func startInProcess(ctx context.Context, dataDir string) (*target, error) {
	// serve.go's GC setting, for the same process.
	gateway.TuneRuntime()
	path := filepath.Join(dataDir, "sportello.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	res, err := seed(ctx, d)
	if err != nil {
		d.Close()
		return nil, err
	}
	t := &target{mode: "inproc", dataDir: dataDir, liveKey: res.LiveService.Key, profileCF: demo.TestFiscalCodes[0], pid: os.Getpid(),
		testKey: res.TestService.Key, testCFs: res.TestService.TestFiscalCodes}
	var g *gateway.Gateway
	var srv *http.Server
	start := func() error {
		var err error
		g, err = gateway.New(gateway.Config{DB: d, Catalog: i18n.MustLoad(),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/api/v1/", g.Handler())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		t.base = "http://" + ln.Addr().String()
		return nil
	}
	stopServer := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = g.Close(sctx)
	}
	if err := start(); err != nil {
		d.Close()
		return nil, err
	}
	t.d = d
	t.stopFn = func() { stopServer(); d.Close() }
	return t, nil
}

// startProcess builds the binary from the module root, seeds the data
// directory with seed-demo and starts the server on a free loopback port.
func startProcess(ctx context.Context, dataDir string) (*target, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(filepath.Dir(dataDir), "sportello")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = root
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	out, err := exec.CommandContext(ctx, bin, "seed-demo", "--data", dataDir).Output()
	if err != nil {
		return nil, fmt.Errorf("seed-demo: %w", err)
	}
	var res demo.Result
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.LiveService.Key == "" {
		return nil, fmt.Errorf("seed-demo output %q: %v", out, err)
	}
	if err := withDB(ctx, dataDir, func(d *db.DB) error {
		_, err := d.W.ExecContext(ctx, `UPDATE services SET rate_limit_requests = 1000000000, rate_limit_window_s = 1 WHERE public_id = ?`, demo.LiveServiceID)
		return err
	}); err != nil {
		return nil, err
	}
	t := &target{mode: "process", dataDir: dataDir, liveKey: res.LiveService.Key, profileCF: res.TestService.TestFiscalCodes[0],
		testKey: res.TestService.Key, testCFs: res.TestService.TestFiscalCodes}
	var cmd *exec.Cmd
	start := func() error {
		cmd = exec.Command(bin, "--addr", "127.0.0.1:0", "--data", dataDir)
		cmd.Env = append(os.Environ(), "SPORTELLO_LOG_LEVEL=warn", "SPORTELLO_ADMIN_PASSWORD=bench-not-a-secret-1234")
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		sc := bufio.NewScanner(stdout)
		deadline := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
		defer deadline.Stop()
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "Sportello is running: open "); ok {
				t.base = strings.TrimSpace(url)
				break
			}
		}
		go io.Copy(io.Discard, stdout)
		if t.base == "" {
			return errors.New("server did not print its address")
		}
		t.pid = cmd.Process.Pid
		r, err := http.Get(t.base + "/api/v1/openapi.yaml")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("the binary does not serve /api/v1 yet (status %d)", r.StatusCode)
		}
		return nil
	}
	stop := func() {
		if cmd == nil || cmd.Process == nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		cmd = nil
	}
	if err := start(); err != nil {
		stop()
		return nil, err
	}
	t.stopFn = stop
	t.pause = func() error { stop(); return nil }
	t.resume = start
	return t, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the sportello module")
	}
	return filepath.Dir(mod), nil
}

func withDB(ctx context.Context, dataDir string, fn func(d *db.DB) error) error {
	d, err := db.Open(ctx, filepath.Join(dataDir, "sportello.db"))
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(d)
}

func (t *target) sendRequest(cfs []string, body []byte) func(int) request {
	h := http.Header{"Ocp-Apim-Subscription-Key": {t.liveKey}, "Content-Type": {"application/json"}}
	base := t.base + "/api/v1/messages/"
	return func(i int) request {
		return request{method: "POST", url: base + cfs[i%len(cfs)], body: body, header: h}
	}
}

// testSendRequest sends with the test-mode key to its test recipients.
func (t *target) testSendRequest(body []byte) func(int) request {
	h := http.Header{"Ocp-Apim-Subscription-Key": {t.testKey}, "Content-Type": {"application/json"}}
	base := t.base + "/api/v1/messages/"
	return func(i int) request {
		return request{method: "POST", url: base + t.testCFs[i%len(t.testCFs)], body: body, header: h}
	}
}

// testServiceCounts reads what the test-mode service has stored: its
// messages and its committed quota use, over all weeks.
func (t *target) testServiceCounts() (messages, used int, err error) {
	r, err := sqlx.Open("sqlite3", "file:"+filepath.Join(t.dataDir, "sportello.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	if err := r.Get(&messages, `SELECT COUNT(*) FROM messages m JOIN services s ON s.id = m.service_id WHERE s.public_id = ?`, demo.TestServiceID); err != nil {
		return 0, 0, err
	}
	err = r.Get(&used, `SELECT COALESCE(SUM(q.used), 0) FROM quota_usage q JOIN services s ON s.id = q.service_id WHERE s.public_id = ?`, demo.TestServiceID)
	return messages, used, err
}

func (t *target) profileRequest() func(int) request {
	h := http.Header{"Ocp-Apim-Subscription-Key": {t.liveKey}}
	u := t.base + "/api/v1/profiles/" + t.profileCF
	return func(int) request { return request{method: "GET", url: u, header: h} }
}

// countMessages reads the committed count from the database file.
func (t *target) countMessages() (int, error) {
	r, err := sqlx.Open("sqlite3", "file:"+filepath.Join(t.dataDir, "sportello.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var n int
	err = r.Get(&n, `SELECT COUNT(*) FROM messages`)
	return n, err
}

// outbox is the delivery backlog: accepted messages not yet processed.
func (t *target) outbox() int {
	r, err := sqlx.Open("sqlite3", "file:"+filepath.Join(t.dataDir, "sportello.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return -1
	}
	defer r.Close()
	var n int
	if err := r.Get(&n, `SELECT COUNT(*) FROM outbox`); err != nil {
		return -1
	}
	return n
}

// drain waits (bounded) for the delivery workers of the real server to
// finish the backlog of the previous scenario, so it does not eat the CPU
// of the next one.
func (t *target) drain(limit time.Duration) {
	if t.mode != "process" {
		return
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if n := t.outbox(); n <= 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("bench: outbox still has %d messages after %s\n", t.outbox(), limit)
}

// checkDurable verifies that every 201 has its row: the server answered
// only after commit, so the count must match exactly.
func (t *target) checkDurable(before, accepted int) error {
	after, err := t.countMessages()
	if err != nil {
		return err
	}
	if after-before != accepted {
		return fmt.Errorf("%d messages stored for %d 201 answers", after-before, accepted)
	}
	fmt.Printf("bench: all %d accepted messages are in the database\n", accepted)
	return nil
}

// rssMB reads the server's resident set size (in-process mode: the whole
// bench process, load generator included).
func (t *target) rssMB() float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(t.pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return round(float64(kb) / 1024)
		}
	}
	return -1
}
