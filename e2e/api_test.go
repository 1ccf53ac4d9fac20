package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// integrator calls the gateway API the way an institution's system does:
// plain HTTP with the service key in IO's header.
type integrator struct {
	t    *testing.T
	base string
	key  string
	hc   *http.Client
}

func newIntegrator(t *testing.T, base, key string) *integrator {
	return &integrator{t: t, base: base, key: key, hc: &http.Client{Timeout: 20 * time.Second}}
}

// apiReply is a gateway answer: status, headers and the decoded JSON body.
type apiReply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (in *integrator) do(method, path string, body any) apiReply {
	in.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			in.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", in.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.hc.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		in.t.Fatal(err)
	}
	r := apiReply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body) // problem+json and JSON answers; others stay in Raw
	return r
}

// send posts a message to a citizen and returns the gateway's answer.
func (in *integrator) send(fiscalCode, subject, markdown string) apiReply {
	in.t.Helper()
	return in.do("POST", "/api/v1/messages/"+fiscalCode, map[string]any{
		"content": map[string]any{"subject": subject, "markdown": markdown},
	})
}
