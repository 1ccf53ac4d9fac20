package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The load generator's lean client must read every response whole, or the
// next request on the connection reads garbage: sized, chunked, empty and
// closing responses, on one kept-alive connection.
func TestRawClientKeepsConnectionInStep(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Test")+" "+string(b))
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("hello"))
		case "/chunked":
			w.WriteHeader(http.StatusOK)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("x", 100)))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	c := newRawConn(hostOf(srv.URL))
	defer c.close()
	steps := []struct {
		rq   request
		want int
	}{
		{request{method: "POST", url: srv.URL + "/sized", body: []byte(`{"a":1}`), header: http.Header{"X-Test": {"k"}}}, 201},
		{request{method: "GET", url: srv.URL + "/chunked"}, 200},
		{request{method: "GET", url: srv.URL + "/empty"}, 204},
		{request{method: "GET", url: srv.URL + "/sized"}, 201},
		{request{method: "GET", url: srv.URL + "/close"}, 429},
		{request{method: "GET", url: srv.URL + "/sized"}, 201}, // redialled
	}
	for i, s := range steps {
		got, err := c.do(s.rq)
		if err != nil || got != s.want {
			t.Fatalf("step %d %s: status %d, err %v; want %d", i, s.rq.url, got, err, s.want)
		}
	}
	if bodies[0] != `POST /sized k {"a":1}` || len(bodies) != len(steps) {
		t.Fatalf("server saw %q", bodies)
	}
}
