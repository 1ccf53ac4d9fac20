package delivery

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"sportello/db"
	"sportello/messaging/delivery/deliverytest"
)

// The crash test runs the pipeline in a child process (this test binary,
// re-executed) and kills it with SIGKILL while messages keep arriving.
const childEnv = "SPORTELLO_DELIVERY_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

func runChild(path string) int {
	ctx := context.Background()
	d, err := db.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	del, err := New(Config{DB: d, Logger: quietLogger(), BatchSize: 100, PollInterval: 5 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_ = del.Run(ctx) // until killed
	return 0
}

func startChild(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// SIGKILL during load: no accepted message is lost, none enters an inbox
// twice, and after a restart every one is processed.
func TestCrashDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sportello.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	inst, _ := deliverytest.Institution(ctx, d, "Comune")
	svc, err := deliverytest.AddService(ctx, d, inst, "Tributi", deliverytest.ServiceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	var fcs []string
	for i := range 50 {
		fc := fmt.Sprintf("CRASH%02dA01H501X", i)
		fcs = append(fcs, fc)
		if err := deliverytest.PutProfile(ctx, d, deliverytest.DefaultProfile(fc)); err != nil {
			t.Fatal(err)
		}
	}

	// Producer: commits messages (as the gateway does) the whole time.
	accepted := map[string]bool{}
	produce := func(n int) {
		for i := range n {
			id, err := deliverytest.Insert(ctx, d, deliverytest.Message{Service: svc, FiscalCode: fcs[i%len(fcs)]})
			if err != nil {
				t.Fatal(err)
			}
			accepted[id] = true
		}
	}
	for round := range 4 {
		child := startChild(t, path)
		produce(400)
		// Kill at a different moment of the child's work each round.
		time.Sleep(time.Duration(20+round*35) * time.Millisecond)
		produce(200)
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
	}
	var processedBeforeRestart int
	_ = d.R.Get(&processedBeforeRestart, `SELECT count(*) FROM messages WHERE status = 'PROCESSED'`)

	child := startChild(t, path)
	defer func() {
		_ = child.Process.Signal(syscall.SIGKILL)
		_ = child.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var left int
		if err := d.R.Get(&left, `SELECT count(*) FROM outbox`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued a minute after restart", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var total, processed, inbox, distinct int
	_ = d.R.Get(&total, `SELECT count(*) FROM messages`)
	_ = d.R.Get(&processed, `SELECT count(*) FROM messages WHERE status = 'PROCESSED'`)
	_ = d.R.Get(&inbox, `SELECT count(*) FROM inbox`)
	_ = d.R.Get(&distinct, `SELECT count(DISTINCT message_id) FROM inbox`)
	t.Logf("accepted %d, processed before the last restart %d, after %d", len(accepted), processedBeforeRestart, processed)
	if total != len(accepted) || processed != len(accepted) {
		t.Fatalf("accepted %d, stored %d, processed %d", len(accepted), total, processed)
	}
	if inbox != len(accepted) || distinct != inbox {
		t.Fatalf("inbox rows %d (distinct %d), want %d", inbox, distinct, len(accepted))
	}
	var notices, distinctNotices int
	_ = d.R.Get(&notices, `SELECT count(*) FROM notifications`)
	_ = d.R.Get(&distinctNotices, `SELECT count(*) FROM (SELECT DISTINCT message_id, channel FROM notifications)`)
	if notices != len(accepted) || distinctNotices != notices { // one e-mail notice each, no push configured
		t.Fatalf("notification rows %d (distinct %d), want %d", notices, distinctNotices, len(accepted))
	}
	if processedBeforeRestart == 0 || processedBeforeRestart == len(accepted) {
		t.Logf("note: the kills did not interrupt work in flight (processed before restart: %d)", processedBeforeRestart)
	}
}
