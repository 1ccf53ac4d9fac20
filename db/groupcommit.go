package db

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/jmoiron/sqlx"
)

// GroupCommitter runs many small write operations in shared transactions:
// while one transaction commits (and fsyncs, synchronous=FULL), new
// operations queue, and the next transaction takes them all. Each caller's
// Do returns only after the transaction holding its operation committed, so
// "Do returned nil" means "durable". This is what lets the gateway answer
// 201 only after an fsync yet serve thousands of sends per second.
type GroupCommitter struct {
	db       *DB
	reqs     chan *gcRequest
	maxBatch int
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// ErrCommitterClosed is returned by Do after Close.
var ErrCommitterClosed = errors.New("db: group committer closed")

// Op is one caller's part of a shared transaction. It may run more than
// once (if another operation of the batch fails, the batch is retried
// without it), so it must not have effects outside the transaction.
type Op func(tx *GTx) error

type gcRequest struct {
	op  Op
	err chan error
}

// GTx is the shared transaction as an operation sees it.
type GTx struct {
	*sqlx.Tx
	g   *GroupCommitter
	ctx context.Context
}

// Exec runs a statement prepared once per process (see Prepare), which
// spares SQLite a parse per row on the hot path.
func (t *GTx) Exec(query string, args ...any) (sql.Result, error) {
	if st := t.g.stmt(query); st != nil {
		return t.Tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
	}
	return t.Tx.ExecContext(t.ctx, query, args...)
}

// NewGroupCommitter starts the commit loop. maxBatch bounds a transaction.
func NewGroupCommitter(d *DB, maxBatch int) *GroupCommitter {
	if maxBatch <= 0 {
		maxBatch = 512
	}
	g := &GroupCommitter{db: d, reqs: make(chan *gcRequest, 4*maxBatch), maxBatch: maxBatch,
		stop: make(chan struct{}), done: make(chan struct{}), stmts: map[string]*sql.Stmt{}}
	go g.loop()
	return g
}

// Prepare registers hot statements; call it before traffic starts (a
// statement is prepared on the single writer connection, which must be idle).
func (g *GroupCommitter) Prepare(ctx context.Context, queries ...string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, q := range queries {
		if _, ok := g.stmts[q]; ok {
			continue
		}
		st, err := g.db.W.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		g.stmts[q] = st
	}
	return nil
}

func (g *GroupCommitter) stmt(q string) *sql.Stmt {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stmts[q]
}

// Do queues op and waits until its transaction committed or failed. If ctx
// ends first, Do still waits for the outcome: the op may already be in a
// transaction, and the caller must not guess.
func (g *GroupCommitter) Do(ctx context.Context, op Op) error {
	r := &gcRequest{op: op, err: make(chan error, 1)}
	select {
	case <-g.stop:
		return ErrCommitterClosed
	default:
	}
	select {
	case g.reqs <- r:
	case <-g.stop:
		return ErrCommitterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.err:
		return err
	case <-g.done:
		// The loop ended; it answers everything it drained, so an empty
		// channel here means the request arrived after the final drain.
		select {
		case err := <-r.err:
			return err
		default:
			return ErrCommitterClosed
		}
	}
}

// Close commits what is queued and stops the loop.
func (g *GroupCommitter) Close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
	g.mu.Lock()
	for _, st := range g.stmts {
		st.Close()
	}
	g.stmts = map[string]*sql.Stmt{}
	g.mu.Unlock()
}

func (g *GroupCommitter) loop() {
	defer close(g.done)
	batch := make([]*gcRequest, 0, g.maxBatch)
	for {
		var first *gcRequest
		select {
		case first = <-g.reqs:
		case <-g.stop:
			// Drain what was accepted before the stop.
			for {
				select {
				case r := <-g.reqs:
					batch = append(batch[:0], r)
					g.run(batch)
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < g.maxBatch {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		g.run(batch)
	}
}

// run commits a batch. An operation that fails is answered with its error
// and the batch is retried without it, so one bad request never sinks the
// others.
func (g *GroupCommitter) run(batch []*gcRequest) {
	ctx := context.Background()
	pending := batch
	for len(pending) > 0 {
		tx, err := g.db.W.BeginTxx(ctx, nil)
		if err != nil {
			answer(pending, err)
			return
		}
		gtx := &GTx{Tx: tx, g: g, ctx: ctx}
		failed := -1
		var opErr error
		for i, r := range pending {
			if err := r.op(gtx); err != nil {
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
		answer(pending, tx.Commit())
		return
	}
}

func answer(rs []*gcRequest, err error) {
	for _, r := range rs {
		r.err <- err
	}
}
