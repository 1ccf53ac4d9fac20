package send

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// Pipeline is a group committer that overlaps the fsync of one batch with
// the execution of the next, so the single writer never sits idle waiting
// for the disk.
//
// A plain group commit with synchronous=FULL writes the batch's WAL frames
// and fsyncs inside COMMIT, and the next batch waits for that fsync (it was
// measured about 20 % slower and removed). Here a batch commits with
// synchronous=NORMAL (frames written, no fsync), the writer moves on to the
// next batch at once, and a second goroutine fsyncs the WAL file and only
// then answers the batch's callers.
// An fsync that starts after a COMMIT returned covers that commit's frames
// (page cache is per file, not per descriptor), so "Do returned nil" still
// means "on disk": a power cut after a 201 loses nothing. Checkpoints (done
// by the gateway's checkpointer with synchronous=FULL) fsync the WAL before
// copying it, so they never move frames that could still vanish.
//
// The hand-over to the syncer is unbuffered: at most one batch is being
// fsynced while the next one executes and commits. Letting the writer run
// further ahead was measured to be slower: batches get small, and every
// commit rewrites the same hot pages (table and index tails) into the WAL.
//
// The writer connection is held for one cycle at a time through
// db.NoSyncConn, which puts it back to synchronous=FULL before it returns to
// the pool, so other writers (the portal) keep FULL commits.
type Pipeline struct {
	d        *db.DB
	log      *slog.Logger
	walPath  string
	maxBatch int
	reqs     chan *pipeReq
	toSync   chan []*pipeReq
	barriers chan chan error // Sync's requests for an fsync
	stop     chan struct{}
	loopDone chan struct{}
	syncDone chan struct{}
	once     sync.Once

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// Op is one caller's part of a shared transaction. It may run more than
// once (a batch is retried without an operation that failed), so it must
// have no effect outside the transaction.
type Op func(tx *Tx) error

// Tx is the shared transaction as an operation sees it.
type Tx struct {
	tx    *sql.Tx
	p     *Pipeline
	ctx   context.Context
	bound map[string]*sql.Stmt // prepared statements bound to this tx
}

// stmt returns the prepared statement of query bound to this transaction
// (bound once per transaction, not once per operation), or nil.
func (t *Tx) stmt(query string) *sql.Stmt {
	if st, ok := t.bound[query]; ok {
		return st
	}
	st := t.p.stmt(query)
	if st != nil {
		st = t.tx.StmtContext(t.ctx, st)
	}
	if t.bound == nil {
		t.bound = map[string]*sql.Stmt{}
	}
	t.bound[query] = st
	return st
}

// Exec runs a statement, prepared once per process when registered with
// Prepare (SQLite then skips parsing on the hot path).
func (t *Tx) Exec(query string, args ...any) (sql.Result, error) {
	if st := t.stmt(query); st != nil {
		return st.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

// QueryRow runs a single-row query in the transaction.
func (t *Tx) QueryRow(query string, args ...any) *sql.Row {
	if st := t.stmt(query); st != nil {
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

type pipeReq struct {
	op  Op
	err chan error
}

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("send: pipeline closed")

// NewPipeline starts the writer and syncer goroutines. maxBatch bounds
// one transaction.
func NewPipeline(d *db.DB, maxBatch int, log *slog.Logger) (*Pipeline, error) {
	if maxBatch <= 0 {
		maxBatch = 512
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Pipeline{d: d, log: log, walPath: d.Path + "-wal", maxBatch: maxBatch,
		reqs: make(chan *pipeReq, 4*maxBatch), toSync: make(chan []*pipeReq), barriers: make(chan chan error),
		stop: make(chan struct{}), loopDone: make(chan struct{}), syncDone: make(chan struct{}),
		stmts: map[string]*sql.Stmt{}}
	// The WAL file exists once the database is open in WAL mode; make its
	// directory entry durable once, since the syncer only fsyncs the file.
	if err := syncDir(filepath.Dir(d.Path)); err != nil {
		return nil, fmt.Errorf("send: sync data dir: %w", err)
	}
	go p.loop()
	go p.syncLoop()
	return p, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Prepare registers hot statements on the writer; call it before traffic.
func (p *Pipeline) Prepare(ctx context.Context, queries ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range queries {
		if _, ok := p.stmts[q]; ok {
			continue
		}
		st, err := p.d.W.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		p.stmts[q] = st
	}
	return nil
}

func (p *Pipeline) stmt(q string) *sql.Stmt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stmts[q]
}

// Do queues op and waits until its transaction is committed and fsynced.
// Once queued, Do waits for the outcome even if ctx ends: the caller must
// not guess whether its operation was stored.
func (p *Pipeline) Do(ctx context.Context, op Op) error {
	r := &pipeReq{op: op, err: make(chan error, 1)}
	select {
	case <-p.stop:
		return ErrClosed
	default:
	}
	select {
	case p.reqs <- r:
	case <-p.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.await(r.err)
}

// await waits for an answer on ch; once the syncer has stopped, an answer
// it gave before stopping still counts, and none means closed.
func (p *Pipeline) await(ch chan error) error {
	select {
	case err := <-ch:
		return err
	case <-p.syncDone:
		select {
		case err := <-ch:
			return err
		default:
			return ErrClosed
		}
	}
}

// Close commits and syncs what is queued, then stops.
func (p *Pipeline) Close() {
	p.once.Do(func() { close(p.stop) })
	<-p.syncDone
	p.mu.Lock()
	for _, st := range p.stmts {
		st.Close()
	}
	p.stmts = map[string]*sql.Stmt{}
	p.mu.Unlock()
}

func (p *Pipeline) loop() {
	defer close(p.loopDone)
	defer close(p.toSync)
	batch := make([]*pipeReq, 0, p.maxBatch)
	for {
		var first *pipeReq
		select {
		case first = <-p.reqs:
		case <-p.stop:
			for {
				select {
				case r := <-p.reqs:
					p.run([]*pipeReq{r})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < p.maxBatch {
			select {
			case r := <-p.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		p.run(batch)
	}
}

// run commits one batch without fsync and hands it to the syncer. An
// operation that fails is answered alone and the batch retried without it.
func (p *Pipeline) run(batch []*pipeReq) {
	ctx := context.Background()
	pending := append([]*pipeReq(nil), batch...)
	handed := false
	err := p.d.NoSyncConn(ctx, func(conn *sqlx.Conn) error {
		for len(pending) > 0 {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			t := &Tx{tx: tx, p: p, ctx: ctx}
			failed := -1
			var opErr error
			for i, r := range pending {
				if err := runOp(r.op, t); err != nil {
					failed, opErr = i, err
					break
				}
			}
			if failed >= 0 {
				_ = tx.Rollback()
				pending[failed].err <- opErr
				pending = append(pending[:failed:failed], pending[failed+1:]...)
				continue
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			p.toSync <- pending
			handed = true
			return nil
		}
		return nil
	})
	switch {
	case err == nil:
	case handed:
		// Committed and with the syncer; only the connection's reset failed.
		p.log.Error("send: writer connection", "err", err)
	default:
		answerAll(pending, err)
	}
}

// syncLoop fsyncs the WAL for every committed batch, several at a time,
// and for every Sync barrier that arrived before the fsync started.
func (p *Pipeline) syncLoop() {
	defer close(p.syncDone)
	var waiting [][]*pipeReq
	var barriers []chan error
	for open := true; open; {
		waiting, barriers = waiting[:0], barriers[:0]
		select {
		case b, ok := <-p.toSync:
			if !ok {
				return
			}
			waiting = append(waiting, b)
		case ch := <-p.barriers:
			barriers = append(barriers, ch)
		}
	more:
		for {
			select {
			case b, ok := <-p.toSync:
				if !ok {
					open = false
					break more
				}
				waiting = append(waiting, b)
			case ch := <-p.barriers:
				barriers = append(barriers, ch)
			default:
				break more
			}
		}
		err := p.syncWAL()
		if err != nil {
			p.log.Error("send: fsync WAL", "err", err)
			err = fmt.Errorf("send: fsync: %w", err)
		}
		for _, b := range waiting {
			answerAll(b, err)
		}
		for _, ch := range barriers {
			ch <- err
		}
	}
}

// Sync returns once an fsync of the WAL that started after the call has
// finished: whatever was committed before the call is then on disk. It
// does not use the writer (a retry answered from the read pool waits for
// the earlier message's fsync this way), and concurrent calls share one
// fsync with each other and with the batches.
func (p *Pipeline) Sync(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case p.barriers <- ch:
	case <-p.syncDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.await(ch)
}

// syncWAL opens the WAL file afresh each time (it can be replaced when
// every connection closes) and fsyncs it.
func (p *Pipeline) syncWAL() error {
	f, err := os.OpenFile(p.walPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = datasync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// runOp runs one operation and turns a panic in it into its error: the
// batch is then rolled back and retried without it, like any failed
// operation, instead of the panic ending the process with every other
// caller's send in the same transaction.
func runOp(op Op, t *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("send: operation panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return op(t)
}

func answerAll(rs []*pipeReq, err error) {
	for _, r := range rs {
		r.err <- err
	}
}
