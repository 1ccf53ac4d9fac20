package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/db/dbtest"
	"sportello/gateway"
	"sportello/gateway/clientip"
	"sportello/gateway/keys"
	"sportello/messaging/fiscalcode"
	"sportello/templates/i18n"
)

// clock is the injected time: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	d     *db.DB
	g     *gateway.Gateway
	srv   *httptest.Server
	clock *clock
	cfg   gateway.Config
}

func newEnv(t testing.TB, tweak ...func(*gateway.Config)) *env {
	t.Helper()
	e := &env{t: t, d: dbtest.Open(t), clock: &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}}
	e.cfg = gateway.Config{DB: e.d, Catalog: i18n.MustLoad(), Now: e.clock.Now, FlushEvery: time.Hour}
	for _, f := range tweak {
		f(&e.cfg)
	}
	e.start()
	return e
}

// start builds a gateway on the current database (again after restart).
func (e *env) start() {
	e.t.Helper()
	g, err := gateway.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.g = g
	e.srv = httptest.NewServer(g.Handler())
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.srv == nil {
		return
	}
	e.srv.Close()
	if err := e.g.Close(context.Background()); err != nil {
		e.t.Error(err)
	}
	e.srv = nil
}

// restart stops the gateway, closes and reopens the database file.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	path := e.d.Path
	if err := e.d.Close(); err != nil {
		e.t.Fatal(err)
	}
	d, err := db.Open(context.Background(), path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	e.d = d
	e.cfg.DB = d
	e.start()
}

type svcOpts struct {
	recipients []string
	cidrs      []string
	maxPayment int64
	rate       [2]int // requests, window seconds; zero = default
	approved   bool
}

var instSeq int64

// service creates an institution and a service with test keys (and live
// keys when approved) and returns the service id and primary keys.
func (e *env) service(o svcOpts) (id int64, testKey, liveKey string) {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	rec, _ := json.Marshal(append([]string{}, o.recipients...))
	cid, _ := json.Marshal(append([]string{}, o.cidrs...))
	err := e.d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		instSeq++
		res, err := tx.Exec(`INSERT INTO institutions (name, fiscal_code, pec, created_at) VALUES ('Comune', ?, 'p@pec.it', ?)`,
			time.Now().Format("150405.000000000")+string(rune('a'+instSeq%26)), now)
		if err != nil {
			return err
		}
		inst, _ := res.LastInsertId()
		req, win := 150, 5
		if o.rate[0] != 0 {
			req, win = o.rate[0], o.rate[1]
		}
		res, err = tx.Exec(`INSERT INTO services (public_id, institution_id, name, authorized_recipients, authorized_cidrs,
			max_payment_cents, rate_limit_requests, rate_limit_window_s, created_at) VALUES (?, ?, 'Tributi', ?, ?, ?, ?, ?, ?)`,
			"svc"+time.Now().Format("150405.000000000"), inst, string(rec), string(cid), o.maxPayment, req, win, now)
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		p, err := keys.IssuePair(ctx, tx, id, keys.Test, 0)
		if err != nil {
			return err
		}
		testKey = p.Primary
		if o.approved {
			res, err = tx.Exec(`INSERT INTO service_versions (service_id, version_no, state, card, created_at, updated_at) VALUES (?, 1, 'approved', '{}', ?, ?)`, id, now, now)
			if err != nil {
				return err
			}
			v, _ := res.LastInsertId()
			if _, err := tx.Exec(`UPDATE services SET live_version_id = ? WHERE id = ?`, v, id); err != nil {
				return err
			}
			lp, err := keys.IssuePair(ctx, tx, id, keys.Live, 0)
			if err != nil {
				return err
			}
			liveKey = lp.Primary
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return id, testKey, liveKey
}

type resp struct {
	*http.Response
	body []byte
}

func (r resp) problem(t *testing.T) problemDoc {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d content type %q, want problem+json: %s", r.StatusCode, ct, r.body)
	}
	var p problemDoc
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != r.StatusCode || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem %+v", p)
	}
	return p
}

type problemDoc struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Rule    string `json:"rule"`
		Limit   any    `json:"limit"`
		Value   any    `json:"value"`
		Message string `json:"message"`
	} `json:"errors"`
}

// do sends a request; body may be a string (sent as is) or a value (JSON).
func (e *env) do(method, path, key string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Ocp-Apim-Subscription-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res, b}
}

// metered is how many requests of the service the usage meter wrote with
// outcome (call e.stop first: it flushes the meter).
func (e *env) metered(serviceID int64, outcome string) int {
	e.t.Helper()
	return e.count(`SELECT COALESCE(SUM(count), 0) FROM usage_daily WHERE service_id = ? AND outcome = ?`, serviceID, outcome)
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.d.R.Get(&n, q, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// cf builds a valid person fiscal code from 15 characters.
func cf(first15 string) string { return first15 + string(fiscalcode.CheckChar(first15)) }

var (
	mario = cf("RSSMRA85T10A562")
	anna  = cf("BNCNNA90A41H501")
)

func msg(subject string) map[string]any {
	return map[string]any{"content": map[string]any{
		"subject":  subject,
		"markdown": "Gentile cittadino, le ricordiamo che la scadenza per il pagamento della TARI è fissata al 31 dicembre.",
	}}
}

var _ = clientip.Resolver{}
