package gateway

import "net/http"

// PanicAfterAuth is an authenticated handler with a bug: it panics, so
// tests can see what an integrator gets back and what is metered.
func (g *Gateway) PanicAfterAuth() http.Handler {
	return g.authed(func(http.ResponseWriter, *http.Request, *call) {
		panic("a bug in a handler")
	})
}

// PanicAfterReserve is a handler with a bug after it reserved a unit of
// the test quota: the unit must come back, not stay held until a restart.
func (g *Gateway) PanicAfterReserve() http.Handler {
	return g.authed(func(w http.ResponseWriter, r *http.Request, c *call) {
		if _, ok := g.reserveTest(w, r, c); ok {
			panic("a bug after the quota unit was reserved")
		}
	})
}

// AbortAfterAuth is a handler that aborts the response (http.ErrAbortHandler,
// as a reverse proxy does when its upstream breaks): no answer, but the
// request is still metered.
func (g *Gateway) AbortAfterAuth() http.Handler {
	return g.authed(func(http.ResponseWriter, *http.Request, *call) {
		panic(http.ErrAbortHandler)
	})
}

// PanicAfterAnswer is a handler with a bug after its 201 went out.
func (g *Gateway) PanicAfterAnswer() http.Handler {
	return g.authed(func(w http.ResponseWriter, _ *http.Request, c *call) {
		g.writeRaw(w, c, http.StatusCreated, []byte(`{"id":"01J"}`))
		panic("a bug after the answer")
	})
}
