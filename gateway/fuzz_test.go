package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzSendBody posts arbitrary bodies to the send endpoint with a live
// key. Whatever arrives, the answer is a 201 or a complete problem+json
// below 500, every listed rule has a message with all its arguments, and
// an accepted message reads back with the subject and markdown that were
// sent. `go test` runs the seeds; `go test -fuzz FuzzSendBody ./gateway`
// explores further.
func FuzzSendBody(f *testing.F) {
	valid := `{"content":{"subject":"Promemoria TARI 2026","markdown":"` + strings.Repeat("Gentile cittadino, la rata scade il 16 dicembre. ", 3) + `"}}`
	for _, s := range []string{
		valid,
		`{"time_to_live":3600,"content":{"subject":"Avviso di pagamento","markdown":"` + strings.Repeat("x", 80) + `","due_date":"2026-12-16T00:00:00Z","payment_data":{"amount":12345,"notice_number":"012345678901234567","invalid_after_due_date":true,"payee":{"fiscal_code":"00000000000"}}}}`,
		`{"content":{"subject":"Oggetto àèìòù 日本語 🙂","markdown":"` + strings.Repeat("é", 80) + `"}}`,
		`{"content":{"subject":123,"markdown":true}}`,
		`{"content":null}`, `{}`, `[]`, `null`, ``, `{`, `{"content":{"subject":"` + strings.Repeat("s", 121) + `"}}`,
		`{"time_to_live":1e99,"content":{}}`, `{"time_to_live":-1}`, `{"time_to_live":"3600"}`,
		`{"fiscal_code":"RSSMRA85T10A562S","content":{}}`, `{"feature_level_type":"GOLD"}`,
		`{"content":{"payment_data":{"amount":99999999999,"notice_number":"9"}}}`,
		`{"content":{"due_date":"yesterday"}}`, `{"content":{"subject":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}}`,
		`{"content":{"subject":"Promemoria TARI","markdown":"` + strings.Repeat("m", 10001) + `"}}`,
		`{"unknown":1,"content":{"subject":"Promemoria TARI 2026"}}`, `{"content":{"subject":"a"}} trailing`,
		`{"content":{"subject":"Promemoria TARI 2026","markdown":"\ud800` + strings.Repeat("x", 80) + `"}}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	_, _, liveKey := e.service(svcOpts{approved: true, rate: [2]int{1 << 30, 1}})
	f.Fuzz(func(t *testing.T, body string) {
		code, hdr, raw := post(t, e.srv.URL+"/api/v1/messages/"+mario, liveKey, body)
		if code >= 500 {
			t.Fatalf("status %d for %q: %s", code, body, raw)
		}
		if strings.Contains(string(raw), "%!") {
			t.Fatalf("a message lacks its arguments: %s", raw)
		}
		if code != http.StatusCreated {
			checkProblem(t, code, hdr, raw)
			return
		}
		var sent struct {
			Content struct{ Subject, Markdown string } `json:"content"`
		}
		if err := json.Unmarshal([]byte(body), &sent); err != nil {
			t.Fatalf("accepted a body that does not decode: %q: %v", body, err)
		}
		code, _, raw = get(t, e.srv.URL+hdr.Get("Location"), liveKey)
		var got struct {
			Message struct {
				Content struct{ Subject, Markdown string } `json:"content"`
			} `json:"message"`
		}
		if code != http.StatusOK || json.Unmarshal(raw, &got) != nil {
			t.Fatalf("accepted message not readable: %d %s", code, raw)
		}
		if got.Message.Content != sent.Content {
			t.Fatalf("stored content %+v, sent %+v", got.Message.Content, sent.Content)
		}
	})
}

func checkProblem(t *testing.T, code int, hdr http.Header, raw []byte) {
	t.Helper()
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with content type %q: %s", code, ct, raw)
	}
	var p problemDoc
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("problem does not decode: %v: %s", err, raw)
	}
	if p.Status != code || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem: %s", raw)
	}
	for _, fe := range p.Errors {
		if fe.Rule == "" || fe.Message == "" {
			t.Fatalf("field error without rule or message: %s", raw)
		}
	}
	if code == http.StatusBadRequest && strings.HasSuffix(p.Type, "validation") && len(p.Errors) == 0 {
		t.Fatalf("a validation problem lists no field: %s", raw)
	}
}

func post(t *testing.T, url, key, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return roundTrip(t, req, key)
}

func get(t *testing.T, url, key string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, req, key)
}

func roundTrip(t *testing.T, req *http.Request, key string) (int, http.Header, []byte) {
	t.Helper()
	req.Header.Set("Ocp-Apim-Subscription-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, raw
}
