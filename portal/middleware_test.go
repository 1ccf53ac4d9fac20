package portal

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A panic before the answer started gets a 500; one in the middle of a
// streamed download cuts the connection, so the file never arrives looking
// whole with an error line in it.
func TestAPanicCutsAStartedDownload(t *testing.T) {
	a := &App{Deps: Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	srv := httptest.NewServer(a.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/csv")
			_, _ = w.Write([]byte("id,time_utc\n1,2026-12-03T09:00:00Z\n"))
		}
		panic("a bug")
	})))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 500 {
		t.Fatalf("panic before the answer: %d, want 500", res.StatusCode)
	}
	if res, err := http.Get(srv.URL + "/stream"); err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil {
			t.Fatalf("download read whole (%d): %q; want the connection cut", res.StatusCode, b)
		}
		if strings.Contains(string(b), "Errore interno") {
			t.Fatalf("error text inside the download: %q", b)
		}
	}
}

// The request log keeps no secret and no whole fiscal code, even at debug
// level: reset and invitation tokens are cut, fiscal codes masked in any
// letter case (a mistyped API address lands on the portal with one in it).
func TestTheRequestLogHidesTokensAndFiscalCodes(t *testing.T) {
	var log strings.Builder
	a := &App{Deps: Deps{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
	srv := httptest.NewServer(a.observe(http.NotFoundHandler()))
	defer srv.Close()
	for _, p := range []string{"/password/reset/secret-reset-token", "/invite/secret-invite-token",
		"/API/v1/profiles/RSSMRA85T10A562S", "/api/v2/messages/rssmra85t10a562s/01JDZ"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	out := log.String()
	for _, secret := range []string{"secret-reset-token", "secret-invite-token", "RSSMRA85T10A562S", "rssmra85t10a562s"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "/API/v1/profiles/RSS************S") || !strings.Contains(out, "/password/reset/…") {
		t.Errorf("log does not show the masked paths:\n%s", out)
	}
}
