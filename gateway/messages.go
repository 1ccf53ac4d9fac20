package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"sportello/db"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/send"
)

// maxIdempotencyKey bounds the Idempotency-Key header (it is stored).
const maxIdempotencyKey = 255

// postMessage is IO's submitMessageforUser: POST /messages/{fiscal_code}
// and POST /messages with the fiscal code in the body.
func (g *Gateway) postMessage(w http.ResponseWriter, r *http.Request, c *call) {
	var m send.NewMessage
	raw, release, ok := g.readJSON(w, r, c, &m)
	if !ok {
		return
	}
	defer release()
	idem := r.Header.Get("Idempotency-Key")
	switch {
	case len(idem) > maxIdempotencyKey:
		g.problem(w, r, c, http.StatusBadRequest, "validation", []send.FieldError{{Field: "Idempotency-Key", Rule: send.RuleMaxLength, Limit: maxIdempotencyKey, Value: len(idem)}})
		return
	case !printable(idem):
		g.problem(w, r, c, http.StatusBadRequest, "validation", []send.FieldError{{Field: "Idempotency-Key", Rule: send.RulePattern, Limit: "printable ASCII"}})
		return
	}
	if pathCF := r.PathValue("fiscal_code"); pathCF != "" {
		if m.FiscalCode != "" {
			g.problem(w, r, c, http.StatusBadRequest, "validation", []send.FieldError{{Field: "fiscal_code", Rule: send.RuleConflict}})
			return
		}
		m.FiscalCode = pathCF
	}
	if errs := send.Validate(&m, send.Limits{MaxPaymentCents: c.p.svc.maxPayment}); len(errs) > 0 {
		g.problem(w, r, c, http.StatusBadRequest, "validation", errs)
		return
	}
	if !c.recipientAllowed(m.FiscalCode) {
		g.problem(w, r, c, http.StatusForbidden, "recipient", nil, fiscalcode.Mask(m.FiscalCode))
		return
	}
	sub := send.Submission{Message: &m, IdempotencyKey: idem}
	if idem != "" {
		sum := sha256.Sum256(raw)
		sub.BodyHash = hex.EncodeToString(sum[:])
		// A retry is answered before the test quota is consulted: it costs
		// nothing, so it neither holds a unit (a burst of retries made new
		// sends look as if the week were spent) nor needs one (a retry of
		// a committed message gets its id after the week is spent).
		for {
			out, found, err := g.store.Replay(r.Context(), c.sender(), sub)
			if found || err != nil {
				if c.limits != nil {
					c.limits.retry = 0 // a spent week's Retry-After does not belong on a retry's 201
				}
				g.answerSubmit(w, r, c, m.FiscalCode, out, err)
				return
			}
			// Copies of a request still in flight wait for it, then look
			// again (inflight.go).
			first, done, release := g.inflight.claim(c.p.svc.id, string(c.p.mode), idem)
			if first {
				defer release()
				break
			}
			select {
			case <-done:
			case <-r.Context().Done():
				return // the client left; nothing was reserved or stored
			}
		}
	}
	res, ok := g.reserveTest(w, r, c)
	if !ok {
		return
	}
	if res != nil {
		sub.Extra = res.op
	}
	out, err := g.store.Submit(r.Context(), c.sender(), sub)
	c.settle(err == nil && !out.Replayed)
	g.answerSubmit(w, r, c, m.FiscalCode, out, err)
}

// LastSubmitFailure is when a send last failed to commit (zero if none
// has): the readiness check reports the instance unready for a while after
// one, as when the disk is full.
func (g *Gateway) LastSubmitFailure() time.Time { return g.submitErrs.latestError() }

// answerSubmit answers a send: 201 with the id (a new message or a
// retry's), 422 for a reused Idempotency-Key, 500 otherwise.
func (g *Gateway) answerSubmit(w http.ResponseWriter, r *http.Request, c *call, fiscalCode string, out send.Result, err error) {
	switch {
	case errors.Is(err, send.ErrIdempotencyMismatch):
		g.problem(w, r, c, http.StatusUnprocessableEntity, "idempotency_mismatch", nil)
		return
	case err != nil:
		if ok, held := g.submitErrs.allow(g.now()); ok {
			g.log.Error("gateway: submit", "service", c.p.svc.id, "err", err, "similar_errors_not_logged", held)
		}
		g.problem(w, r, c, http.StatusInternalServerError, "internal", nil)
		return
	}
	if out.Replayed {
		w.Header()["Idempotent-Replayed"] = []string{"true"}
	}
	w.Header()["Location"] = []string{"/api/v1/messages/" + fiscalCode + "/" + out.ID}
	g.writeRaw(w, c, http.StatusCreated, []byte(`{"id":"`+out.ID+`"}`))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// getMessage is IO's getMessage: the message, its status and the state of
// each notification channel. Only the sending service sees it.
func (g *Gateway) getMessage(w http.ResponseWriter, r *http.Request, c *call) {
	cf := r.PathValue("fiscal_code")
	if errs := send.CheckFiscalCode("fiscal_code", cf); len(errs) > 0 {
		g.problem(w, r, c, http.StatusBadRequest, "validation", errs)
		return
	}
	if !c.recipientAllowed(cf) {
		g.problem(w, r, c, http.StatusForbidden, "recipient", nil, fiscalcode.Mask(cf))
		return
	}
	g.countedRead(w, r, c, func() (int, any, error) {
		msg, err := g.store.Get(r.Context(), c.sender(), cf, r.PathValue("id"))
		if errors.Is(err, db.ErrNotFound) {
			return http.StatusNotFound, "message_not_found", nil
		}
		return http.StatusOK, msg, err
	})
}

// countedRead answers a read-only request. For a test key the request
// spends a unit of the weekly quota, and the count is committed before the
// answer leaves, like a send. read returns the status and either the body
// (200) or the problem code (404).
func (g *Gateway) countedRead(w http.ResponseWriter, r *http.Request, c *call, read func() (int, any, error)) {
	res, ok := g.reserveTest(w, r, c)
	if !ok {
		return
	}
	status, body, err := read()
	if err == nil && res != nil {
		err = g.gc.Do(r.Context(), func(tx *send.Tx) error { return res.op(tx) })
	}
	c.settle(err == nil)
	if err != nil {
		g.log.Error("gateway: read", "service", c.p.svc.id, "err", err)
		g.problem(w, r, c, http.StatusInternalServerError, "internal", nil)
		return
	}
	if status != http.StatusOK {
		g.problem(w, r, c, status, body.(string), nil)
		return
	}
	g.writeJSON(w, c, status, body)
}
