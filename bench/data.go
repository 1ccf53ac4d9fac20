package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/send"
)

// sendBody is a typical notice: a subject, a few lines of markdown and a
// payment, about 450 bytes like most real messages.
func sendBody() []byte {
	return []byte(`{"time_to_live":3600,"content":{"subject":"Avviso di pagamento TARI 2026",` +
		`"markdown":"Gentile contribuente,\n\nle ricordiamo che la **seconda rata della TARI 2026** scade il 16 dicembre. ` +
		`Può pagare con l'avviso pagoPA allegato, dall'app o presso gli sportelli abilitati.\n\nUfficio tributi",` +
		`"due_date":"2026-12-16T23:00:00Z","payment_data":{"amount":12550,"notice_number":"012345678901234567"}}}`)
}

// fiscalCodes returns n valid, distinct person fiscal codes.
func fiscalCodes(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	months := "ABCDEHLMPRST"
	out := make([]string, 0, n)
	seen := map[string]bool{}
	for len(out) < n {
		b := make([]byte, 15)
		for i := 0; i < 6; i++ {
			b[i] = letters[r.IntN(26)]
		}
		y := r.IntN(100)
		b[6], b[7] = byte('0'+y/10), byte('0'+y%10)
		b[8] = months[r.IntN(len(months))]
		d := 1 + r.IntN(28)
		b[9], b[10] = byte('0'+d/10), byte('0'+d%10)
		b[11] = letters[r.IntN(26)]
		for i := 12; i < 15; i++ {
			b[i] = byte('0' + r.IntN(10))
		}
		cf := string(b) + string(fiscalcode.CheckChar(string(b)))
		if !seen[cf] && fiscalcode.ValidPerson(cf) {
			seen[cf] = true
			out = append(out, cf)
		}
	}
	return out
}

// startCeiling serves the same route with nothing behind it: read the
// body, answer 201 with an id and a Location. It is what this machine can
// do over loopback HTTP with the same client, the upper bound for the
// gateway.
func startCeiling() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := ceilingServer()
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// ceilingChildEnv makes the bench binary serve only the ceiling (see
// startCeilingProcess).
const ceilingChildEnv = "SPORTELLO_BENCH_CEILING_CHILD"

// startCeilingProcess serves the same bare handler from a process of its
// own, as the real server runs: load generator and server then cross a
// process boundary in both measurements. In one process the Go runtime
// hands each request from client to handler goroutine without waking
// another process, which flatters the ceiling against an out-of-process
// server.
func startCeilingProcess() (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ceilingChildEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("ceiling process: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// serveCeilingChild is the child's main: print the URL, serve until killed.
func serveCeilingChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	_ = ceilingServer().Serve(ln)
}

func ceilingServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/messages/{fiscal_code}", func(w http.ResponseWriter, r *http.Request) {
		var buf [4096]byte
		for {
			if _, err := r.Body.Read(buf[:]); err != nil {
				break
			}
		}
		id := send.NewID(time.Now())
		w.Header().Set("Location", "/api/v1/messages/"+r.PathValue("fiscal_code")+"/"+id)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"` + id + `"}`))
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// prefill stores n delivered messages of the live service, with their inbox
// rows, older than any the benchmark sends, in large transactions.
func (t *target) prefill(ctx context.Context, n int) error {
	if t.pause != nil {
		if err := t.pause(); err != nil {
			return err
		}
	}
	write := func(d *db.DB) error {
		var svc, inst int64
		if err := d.R.QueryRowContext(ctx, `SELECT id, institution_id FROM services WHERE public_id = 'svcDemoLive000000000001'`).Scan(&svc, &inst); err != nil {
			return err
		}
		cfs := fiscalCodes(5000)
		content := `{"subject":"Avviso di pagamento TARI 2026","markdown":"Gentile contribuente, le ricordiamo che la seconda rata della TARI 2026 scade il 16 dicembre. Può pagare con l'avviso pagoPA allegato."}`
		// A week old: well inside the 30-day retention. Dated at the
		// retention limit (as before 2026-12-03), the first tens of
		// thousands crossed it during the measured rounds, and the
		// retention job's purge of them ran beside the sends — a one-off
		// burst of writes, not the cost of a big table (1M runs measured
		// 0.67 of the empty database with it, p99 35–46 ms).
		start := time.Now().Add(-7 * 24 * time.Hour)
		const chunk = 50000
		for done := 0; done < n; done += chunk {
			tx, err := d.W.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			// What delivery leaves behind for a processed message: the
			// message and its inbox row.
			st, err := tx.PrepareContext(ctx, `INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, status, created_at, processed_at)
				VALUES (?, ?, ?, ?, 'live', ?, 3600, 'PROCESSED', ?, ?)`)
			if err != nil {
				tx.Rollback()
				return err
			}
			inbox, err := tx.PrepareContext(ctx, `INSERT INTO inbox (message_id, fiscal_code, service_id, created_at) VALUES (?, ?, ?, ?)`)
			if err != nil {
				tx.Rollback()
				return err
			}
			for i := done; i < min(n, done+chunk); i++ {
				at := start.Add(time.Duration(i) * time.Millisecond)
				id, cf := send.NewID(at), cfs[i%len(cfs)]
				_, err := st.ExecContext(ctx, id, svc, inst, cf, content, at, at)
				if err == nil {
					_, err = inbox.ExecContext(ctx, id, cf, svc, at)
				}
				if err != nil {
					tx.Rollback()
					return err
				}
			}
			st.Close()
			inbox.Close()
			if err := tx.Commit(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if t.d != nil {
		err = write(t.d)
	} else {
		err = withDB(ctx, t.dataDir, write)
	}
	if err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	if t.resume != nil {
		return t.resume()
	}
	return nil
}

// addCitizens gives three recipients in four a citizen profile, so most
// sends end PROCESSED with an inbox row (delivery's full write) and the
// rest REJECTED as USER_NOT_FOUND, as when an institution writes to all
// its residents and only some use the app.
func (t *target) addCitizens(ctx context.Context, cfs []string) (int, error) {
	w, err := sqlx.Open("sqlite3", "file:"+filepath.Join(t.dataDir, "sportello.db")+"?_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer w.Close()
	tx, err := w.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	n := 0
	for i, cf := range cfs {
		if i%4 == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO profiles (fiscal_code, preferred_languages, created_at, updated_at)
			VALUES (?, '["it_IT"]', ?, ?)`, cf, now, now); err != nil {
			return 0, err
		}
		n++
	}
	return n, tx.Commit()
}
