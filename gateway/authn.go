package gateway

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"sportello/gateway/keys"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/send"
)

// call is one authenticated API request.
type call struct {
	p      *principal
	now    time.Time
	limits *limitHeaders
	status int
	// reserved is the test-quota unit held for this request, if any. The
	// handler settles it (counted or given back) once it knows whether the
	// request committed; authed gives it back if the handler never did.
	reserved *reservation
}

// settle ends the request's quota reservation: counted spends the unit,
// otherwise it goes back, and the RateLimit headers (worked out when the
// unit was reserved) give it back too, so a retry or a refusal does not
// look as if it had cost a request.
func (c *call) settle(counted bool) {
	if c.reserved == nil || c.reserved.done {
		return
	}
	c.reserved.finish(counted)
	if !counted && c.limits != nil {
		c.limits.remaining++
	}
}

func (c *call) sender() send.Sender {
	return send.Sender{ServiceID: c.p.svc.id, ServicePublicID: c.p.svc.publicID, InstitutionID: c.p.svc.institutionID,
		Mode: string(c.p.mode), RequireSecureChannels: c.p.svc.requireSecure}
}

// apiKey reads IO's header, or a bearer token for clients that prefer it.
func apiKey(r *http.Request) string {
	if k := r.Header.Get("Ocp-Apim-Subscription-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// unauthenticated answers a request without a valid key: 401, or 429 when
// the client address has sent too many of them.
func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request, code string) {
	lim, ok := g.unauth.take(g.cfg.Resolver.String(r), g.now())
	lim.set(w)
	if !ok {
		g.problem(w, r, nil, http.StatusTooManyRequests, "auth_throttled", nil, unauthRequests, ceilSeconds(unauthWindow))
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sportello"`)
	g.problem(w, r, nil, http.StatusUnauthorized, code, nil)
}

// authed authenticates the key, checks suspension (of the service, its
// institution or the key itself) and CIDRs, spends a live token, then runs
// h. Usage is metered for every authenticated request.
func (g *Gateway) authed(h func(http.ResponseWriter, *http.Request, *call)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// c is set once the key is known; the deferred function then gives
		// back a quota unit its handler reserved but never settled (only a
		// panic skips the settling) and meters the request, whatever the
		// handler did, aborts included.
		var c *call
		defer func() {
			v := recover()
			if v != nil && v != http.ErrAbortHandler {
				g.recovered(w, r, c, v) // answers, setting c.status
			}
			if c != nil {
				c.reserved.finish(false)
				status := c.status
				if status == 0 {
					// Aborted before any answer: the client got nothing,
					// which is not a success on the usage chart.
					status = http.StatusInternalServerError
				}
				g.meter.record(c.p, status, c.now)
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
		}()
		key := apiKey(r)
		if key == "" {
			g.unauthenticated(w, r, "missing_key")
			return
		}
		var p *principal
		if keys.LooksLikeKey(key) {
			var err error
			if p, err = g.auth.lookup(r.Context(), keys.Hash(key)); err != nil {
				g.log.Error("gateway: authenticate", "err", err)
				g.problem(w, r, nil, http.StatusInternalServerError, "internal", nil)
				return
			}
		}
		if p == nil {
			g.unauthenticated(w, r, "unknown_key")
			return
		}
		c = &call{p: p, now: g.now()}
		switch {
		case p.svc.suspended:
			g.problem(w, r, c, http.StatusForbidden, "suspended", nil)
			return
		case p.suspended:
			g.problem(w, r, c, http.StatusForbidden, "key_suspended", nil)
			return
		case p.mode == keys.Live && !p.svc.approved:
			g.problem(w, r, c, http.StatusForbidden, "not_approved", nil)
			return
		case len(p.svc.cidrs) > 0 && !p.svc.allowedFrom(g.cfg.Resolver.Addr(r)):
			g.problem(w, r, c, http.StatusForbidden, "cidr", nil, g.cfg.Resolver.String(r))
			return
		}
		if p.mode == keys.Live {
			lim, ok := g.buckets.take(p.svc, c.now)
			c.limits = lim
			if !ok {
				g.problem(w, r, c, http.StatusTooManyRequests, "rate_limited", nil, lim.limit, ceilSeconds(lim.window))
				return
			}
		} else {
			st, err := g.quota.peek(r.Context(), p.svc.id, c.now)
			if err != nil {
				g.log.Error("gateway: quota", "err", err)
				g.problem(w, r, c, http.StatusInternalServerError, "internal", nil)
				return
			}
			// A spent week is refused here, before the body is read, except
			// for a send with an Idempotency-Key: it may be the retry of a
			// committed message, which costs nothing and gets its id
			// (postMessage refuses it if it is not).
			c.limits = quotaHeaders(st, c.now, st.remaining == 0)
			if st.remaining == 0 && !(r.Method == http.MethodPost && r.Header.Get("Idempotency-Key") != "") {
				g.problem(w, r, c, http.StatusTooManyRequests, "quota_exceeded", nil, st.limit)
				return
			}
		}
		h(w, r, c)
	})
}

// recovered answers a request whose handler panicked (a bug) with a 500
// problem, as integrators expect from every error, instead of net/http's
// dropped connection; authed meters it as a server error. The log names
// the route pattern, not the path: paths hold fiscal codes. c is nil when
// the panic came before the key was known. If the answer had already been
// written (c.status is set as it is, and the gateway writes an answer in
// one piece, with its Content-Length), it stands: after a 201 the message
// is committed, and a cut or a 500 would make the integrator send it again.
func (g *Gateway) recovered(w http.ResponseWriter, r *http.Request, c *call, v any) {
	var service int64
	if c != nil {
		service = c.p.svc.id
	}
	answered := c != nil && c.status != 0
	g.log.Error("gateway: handler panicked", "route", r.Pattern, "service", service, "answered", answered,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if !answered {
		g.problem(w, r, c, http.StatusInternalServerError, "internal", nil)
	}
}

// recipientAllowed enforces test mode: only the service's authorized
// fiscal codes and the sandbox code.
func (c *call) recipientAllowed(cf string) bool {
	return c.p.mode == keys.Live || cf == fiscalcode.Sandbox || c.p.svc.recipients[cf]
}

// reserveTest holds one unit of the weekly quota for a test-key request
// about to be answered; it writes the 429 itself when the week is spent.
// For live keys it returns (nil, true).
func (g *Gateway) reserveTest(w http.ResponseWriter, r *http.Request, c *call) (*reservation, bool) {
	if c.p.mode != keys.Test {
		return nil, true
	}
	res, st, ok, err := g.quota.reserve(r.Context(), c.p.svc.id, c.now)
	if err != nil {
		g.log.Error("gateway: quota", "err", err)
		g.problem(w, r, c, http.StatusInternalServerError, "internal", nil)
		return nil, false
	}
	c.limits = quotaHeaders(st, c.now, !ok)
	if !ok {
		g.problem(w, r, c, http.StatusTooManyRequests, "quota_exceeded", nil, st.limit)
		return nil, false
	}
	c.reserved = res
	return res, true
}
