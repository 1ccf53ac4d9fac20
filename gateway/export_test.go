package gateway

import "net/http"

// PanicAfterAuth is an authenticated handler with a bug: it panics, so
// tests can see what an integrator gets back and what is metered.
func (g *Gateway) PanicAfterAuth() http.Handler {
	return g.authed(func(http.ResponseWriter, *http.Request, *call) {
		panic("a bug in a handler")
	})
}
