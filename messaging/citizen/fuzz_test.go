package citizen

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"sportello/messaging/fiscalcode"
)

// FuzzProfileUpdate sends arbitrary bodies to PUT /citizen/v1/profile,
// each as a citizen of its own. Whatever arrives, the answer is a profile
// (200/201) that GET then returns unchanged, or a problem below 500.
func FuzzProfileUpdate(f *testing.F) {
	for _, s := range []string{
		`{"email":"anna@example.it","preferred_languages":["it_IT"]}`,
		`{"service_preferences_settings":{"mode":"AUTO"},"version":0}`,
		`{"service_preferences_settings":{"mode":"MANUAL"},"is_inbox_enabled":false,"is_email_enabled":true}`,
		`{"blocked_inbox_or_channels":{"svc_1":["EMAIL","INBOX","WEBHOOK"]}}`,
		`{"blocked_inbox_or_channels":{"x":["SMS"]}}`, `{"email":"not an address"}`, `{"preferred_languages":["klingon"]}`,
		`{"version":-1}`, `{"version":1e99}`, `{"accepted_tos_version":3}`, `{"email":"` + strings.Repeat("a", 300) + `@example.it"}`,
		`{"emial":"typo@example.it"}`, `{}`, `[]`, `null`, ``, `{`, `{"email":null}`, `{"preferred_languages":null}`, `{"blocked_inbox_or_channels":{"svc":null}}`,
		`{"email":"ànna@exämple.it"}`, `{"is_webhook_enabled":"yes"}`, `{} {}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, body string) {
		fc := citizenN(seq.Add(1))
		code, raw := citizenCall(t, e, fc, "PUT", body)
		if code >= 500 {
			t.Fatalf("status %d for %q: %s", code, body, raw)
		}
		if code != http.StatusOK && code != http.StatusCreated {
			var p struct {
				Type   string `json:"type"`
				Title  string `json:"title"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Status != code || p.Type == "" || p.Title == "" || strings.Contains(string(raw), "%!") {
				t.Fatalf("status %d with an incomplete problem: %s", code, raw)
			}
			return
		}
		var put, got Profile
		if err := json.Unmarshal(raw, &put); err != nil {
			t.Fatalf("answer does not decode: %v: %s", err, raw)
		}
		code, raw = citizenCall(t, e, fc, "GET", "")
		if code != http.StatusOK || json.Unmarshal(raw, &got) != nil {
			t.Fatalf("profile not readable after %q: %d %s", body, code, raw)
		}
		if !reflect.DeepEqual(put, got) {
			t.Fatalf("PUT answered %+v, GET returns %+v", put, got)
		}
	})
}

// citizenN is the n-th valid person fiscal code (letters from n, fixed
// date and place, computed check character).
func citizenN(n int64) string {
	b := []byte("AAAAAA")
	for i := len(b) - 1; i >= 0 && n > 0; i-- {
		b[i] = byte('A' + n%26)
		n /= 26
	}
	first := string(b) + "85T10A562"
	return first + string(fiscalcode.CheckChar(first))
}

func citizenCall(t *testing.T, e *env, fc, method, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/citizen/v1/profile", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, fc, e.clock.Now()))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}
