package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway/keys"
	"sportello/messaging/delivery/deliverytest"
	"sportello/messaging/fiscalcode"
)

type server struct {
	cmd *exec.Cmd
	url string
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func start(t *testing.T, bin, dataDir string) *server {
	t.Helper()
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--data", dataDir)
	cmd.Env = append(os.Environ(), "SPORTELLO_ADMIN_EMAIL=admin@example.it", "SPORTELLO_ADMIN_PASSWORD=una password lunga di prova", "SPORTELLO_LOG_LEVEL=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "Sportello is running: open "); ok {
				urlCh <- strings.TrimSpace(u)
			}
		}
	}()
	select {
	case u := <-urlCh:
		return &server{cmd: cmd, url: u}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("server did not start")
	}
	return nil
}

func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

func person(n int) string {
	first := fmt.Sprintf("KLLMRA%02dA01H%03d", n%100, n%1000)
	return first + string(fiscalcode.CheckChar(first))
}

// load sends messages through the API until stop closes; it returns the
// ids answered with 201, which must all survive.
func load(s *server, key string, fcs []string, stop <-chan struct{}) []string {
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]any{"content": map[string]any{
					"subject":  "Avviso di prova numero " + fmt.Sprint(i),
					"markdown": "Gentile cittadino, questo è un messaggio di prova inviato durante il test di arresto improvviso del server.",
				}})
				req, _ := http.NewRequest("POST", s.url+"/api/v1/messages/"+fcs[(w*31+i)%len(fcs)], bytes.NewReader(body))
				req.Header.Set("Ocp-Apim-Subscription-Key", key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server was killed
				}
				var out struct {
					ID string `json:"id"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && out.ID != "" {
					mu.Lock()
					ids = append(ids, out.ID)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return ids
}

// TestSIGKILLDuringLoad: the server is killed twice while integrators send;
// after a restart every message answered 201 is PROCESSED with exactly
// one inbox row.
func TestSIGKILLDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sportello")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(dir, "data")
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(dataDir, "sportello.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	inst, err := deliverytest.Institution(ctx, d, "Comune di Prova")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := deliverytest.AddService(ctx, d, inst, "Tributi", deliverytest.ServiceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	var key string
	if err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`UPDATE services SET rate_limit_requests = 1000000, rate_limit_window_s = 1 WHERE id = ?`, svc.ID); err != nil {
			return err
		}
		p, err := keys.IssuePair(ctx, tx, svc.ID, keys.Live, 0)
		key = p.Primary
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var fcs []string
	for i := range 40 {
		fcs = append(fcs, person(i))
		p := deliverytest.DefaultProfile(person(i))
		p.EmailEnabled = false
		if err := deliverytest.PutProfile(ctx, d, p); err != nil {
			t.Fatal(err)
		}
	}

	var accepted []string
	for round := range 2 {
		s := start(t, bin, dataDir)
		stop := make(chan struct{})
		done := make(chan []string, 1)
		go func() { done <- load(s, key, fcs, stop) }()
		time.Sleep(time.Duration(1200+round*500) * time.Millisecond)
		s.kill() // mid-load: requests in flight fail, claimed rows stay in the outbox
		close(stop)
		accepted = append(accepted, <-done...)
	}
	if len(accepted) < 100 {
		t.Fatalf("only %d messages accepted before the kills: the load did not run", len(accepted))
	}
	s := start(t, bin, dataDir)
	defer s.kill()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var left int
		if err := d.R.Get(&left, `SELECT count(*) FROM outbox`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued after restart", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	type row struct {
		ID     string `db:"id"`
		Status string `db:"status"`
		Inbox  int    `db:"inbox"`
	}
	got := map[string]row{}
	var rows []row
	if err := d.R.Select(&rows, `SELECT m.id, m.status, (SELECT count(*) FROM inbox i WHERE i.fiscal_code = m.fiscal_code AND i.message_id = m.id) AS inbox FROM messages m`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		got[r.ID] = r
	}
	for _, id := range accepted {
		r, ok := got[id]
		if !ok {
			t.Fatalf("accepted message %s lost", id)
		}
		if r.Status != "PROCESSED" || r.Inbox != 1 {
			t.Fatalf("message %s: %s with %d inbox rows", id, r.Status, r.Inbox)
		}
	}
	for _, r := range rows { // messages whose 201 was lost in the kill count too
		if r.Inbox > 1 || r.Status != "PROCESSED" {
			t.Fatalf("message %s: %s with %d inbox rows", r.ID, r.Status, r.Inbox)
		}
	}
	t.Logf("accepted %d (stored %d) across two SIGKILLs; all processed once", len(accepted), len(rows))
}
