package citizen

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sportello/db/dbtest"
	"sportello/messaging/delivery/deliverytest"
)

// discard is a ResponseWriter that drops the body, noting its size and
// its largest single write.
type discard struct {
	header         http.Header
	code, n, large int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) WriteHeader(c int)   { d.code = c }
func (d *discard) Write(b []byte) (int, error) {
	d.n += len(b)
	d.large = max(d.large, len(b))
	return len(b), nil
}

// peakHeap runs f while sampling the heap's objects (live and not yet
// collected, with the collector made eager) and returns their peak above
// what they were before.
func peakHeap(f func()) int64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() int64 { metrics.Read(sample); return int64(sample[0].Value.Uint64()) }
	base := read()
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			peak.Store(max(peak.Load(), read()))
			select {
			case <-done:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	f()
	close(done)
	<-stopped
	return max(peak.Load(), read()) - base
}

// A large history is exported whole (every message once, in id order,
// with its notices), and in constant memory: the server's live heap while
// writing stays a small part of the file. Built whole in memory, the
// export of a citizen with 20,000 messages held 8.8 MB of JSON and all
// its rows before the first byte went out.
func TestExportOfALargeHistoryIsWrittenAsItIsRead(t *testing.T) {
	e := newEnv(t)
	fc := person(21)
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "anna@example.it"}, nil)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	const n = 4000
	long := strings.Repeat("Testo del messaggio abbastanza lungo da pesare. ", 20)
	tx := e.db.W.MustBegin()
	start := e.clock.Now().Add(-time.Hour)
	var ids []string
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Millisecond)
		id := deliverytest.NewID(at)
		ids = append(ids, id)
		m := deliverytest.Message{Service: s, FiscalCode: fc, CreatedAt: at, Subject: fmt.Sprintf("Avviso numero %05d", i), Markdown: long}
		if err := deliverytest.InsertTx(e.ctx, tx, id, m); err != nil {
			t.Fatal(err)
		}
		tx.MustExec(`DELETE FROM outbox WHERE message_id = ?`, id)
		if i%10 == 0 { // rejected: findable through messages_by_recipient
			tx.MustExec(`UPDATE messages SET status = 'REJECTED' WHERE id = ?`, id)
			tx.MustExec(`INSERT INTO messages_by_recipient (fiscal_code, message_id) VALUES (?, ?)`, fc, id)
			continue
		}
		tx.MustExec(`UPDATE messages SET status = 'PROCESSED' WHERE id = ?`, id)
		tx.MustExec(`INSERT INTO inbox (fiscal_code, message_id, service_id, created_at) VALUES (?, ?, ?, ?)`, fc, id, s.ID, at)
		tx.MustExec(`INSERT INTO notifications (message_id, channel, status, updated_at) VALUES (?, 'email', 'SENT', ?)`, id, at)
	}
	for i := 0; i < 700; i++ {
		tx.MustExec(`INSERT INTO mail_outbox (message_id, fiscal_code, to_addr, subject, body, created_at) VALUES (?, ?, 'anna@example.it', 'Nuovo messaggio', '', ?)`,
			ids[i], fc, start)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	req := func() *http.Request {
		r := httptest.NewRequest("GET", "/citizen/v1/export", nil)
		r.Header.Set("Authorization", "Bearer "+IssueToken(testKey, fc, e.clock.Now()))
		return r
	}
	rec := httptest.NewRecorder()
	e.api.Handler().ServeHTTP(rec, req())
	if rec.Code != http.StatusOK {
		t.Fatalf("export: %d %s", rec.Code, rec.Body.String())
	}
	var ex Export
	if err := json.Unmarshal(rec.Body.Bytes(), &ex); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	var mails int
	if err := e.db.R.Get(&mails, `SELECT count(*) FROM mail_outbox WHERE fiscal_code = ?`, fc); err != nil {
		t.Fatal(err)
	}
	if len(ex.Messages) != n || len(ex.Mail) != mails || mails <= exportChunk {
		t.Fatalf("export has %d messages and %d mails, want %d and %d", len(ex.Messages), len(ex.Mail), n, mails)
	}
	for i, m := range ex.Messages {
		if m.ID != ids[i] {
			t.Fatalf("message %d is %s, want %s (each once, in id order)", i, m.ID, ids[i])
		}
		if wantNotices := map[bool]int{true: 0, false: 1}[i%10 == 0]; len(m.Notifications) != wantNotices {
			t.Fatalf("message %d has %d notices, want %d", i, len(m.Notifications), wantNotices)
		}
	}

	rec, ex = nil, Export{}
	w := &discard{header: http.Header{}}
	held := peakHeap(func() { e.api.Handler().ServeHTTP(w, req()) })
	if w.code != http.StatusOK {
		t.Fatalf("export: %d", w.code)
	}
	t.Logf("heap peak %d KB above the start while writing a %d KB file, largest write %d KB", held>>10, w.n>>10, w.large>>10)
	if held > int64(w.n)*3/4 || w.large > 64<<10 {
		t.Fatalf("the export held %d KB of heap and wrote %d KB at once for a %d KB file", held>>10, w.large>>10, w.n>>10)
	}
}

// Deleting an account with a large inbox does the bulk of the work in
// chunks, each its own transaction, before the one that removes the
// profile: in one transaction, 20,000 messages held the single writer for
// 0.3 s (2.4 s with a cold cache), every gateway send waiting for it. Seen here by making the last
// transaction fail: the chunks before it are committed.
func TestAccountDeletionWorksInChunksBeforeTheLastTransaction(t *testing.T) {
	e := newEnv(t)
	fc := person(22)
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "anna@example.it"}, nil)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	n := 2*deleteChunk + 7
	tx := e.db.W.MustBegin()
	start := e.clock.Now().Add(-time.Hour)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Millisecond)
		id := deliverytest.NewID(at)
		if err := deliverytest.InsertTx(e.ctx, tx, id, deliverytest.Message{Service: s, FiscalCode: fc, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		tx.MustExec(`DELETE FROM outbox WHERE message_id = ?`, id)
		tx.MustExec(`UPDATE messages SET status = 'PROCESSED' WHERE id = ?`, id)
		tx.MustExec(`INSERT INTO inbox (fiscal_code, message_id, service_id, created_at) VALUES (?, ?, ?, ?)`, fc, id, s.ID, at)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var c int
		if err := e.db.R.Get(&c, q, fc); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The writer is one connection: a temporary trigger on it makes the
	// profile's removal fail.
	e.db.W.MustExec(`CREATE TEMP TRIGGER fail_profile_delete BEFORE DELETE ON main.profiles BEGIN SELECT RAISE(ABORT, 'test'); END`)
	if code := e.call(fc, "DELETE", "/citizen/v1/profile", nil, nil); code != 500 {
		t.Fatalf("deletion with a failing last step: %d", code)
	}
	if left := count(`SELECT count(*) FROM inbox WHERE fiscal_code = ?`); left != 0 {
		t.Fatalf("%d inbox rows left: the deletion did everything in its last transaction", left)
	}
	if kept := count(`SELECT count(*) FROM messages WHERE fiscal_code = ? AND content IS NOT NULL`); kept != 0 {
		t.Fatalf("%d messages kept their content", kept)
	}
	if count(`SELECT count(*) FROM profiles WHERE fiscal_code = ?`) != 1 {
		t.Fatal("the profile is gone though its removal failed")
	}
	e.db.W.MustExec(`DROP TRIGGER temp.fail_profile_delete`)
	if code := e.call(fc, "DELETE", "/citizen/v1/profile", nil, nil); code != 204 {
		t.Fatalf("deletion asked again: %d", code)
	}
	if count(`SELECT count(*) FROM profiles WHERE fiscal_code = ?`) != 0 ||
		count(`SELECT count(*) FROM messages_by_recipient WHERE fiscal_code = ?`) != n {
		t.Fatal("the account is not deleted, or its messages are not findable by recipient")
	}
}

// A deletion chunk cancels its messages' notices by key, not by reading
// every waiting notice of the platform (a mail outage queues many).
func TestAccountDeletionChunksUseKeys(t *testing.T) {
	e := newEnv(t)
	plan := dbtest.Plan(t, e.db, sqlPurgeNotices, e.clock.Now(), `["a"]`)
	if !strings.Contains(plan, "SEARCH notifications USING PRIMARY KEY (message_id=?)") {
		t.Fatalf("notice cancelling plan:\n%s", plan)
	}
}
