package citizen

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rawCall sends body as it is (not re-encoded) and returns the status and
// the problem's single field problem.
func (e *env) rawCall(fc, method, path, body, acceptLanguage string) (int, fieldProblem, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, fc, e.clock.Now()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Language", acceptLanguage)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p struct {
		Title  string         `json:"title"`
		Errors []fieldProblem `json:"errors"`
	}
	_ = json.Unmarshal(raw, &p)
	if resp.StatusCode >= 400 && len(p.Errors) != 1 {
		e.t.Fatalf("%s %s %q: status %d, want exactly one field problem: %s", method, path, body, resp.StatusCode, raw)
	}
	if len(p.Errors) == 0 {
		return resp.StatusCode, fieldProblem{}, p.Title
	}
	return resp.StatusCode, p.Errors[0], p.Title
}

func TestBadBodiesPointAtTheField(t *testing.T) {
	e := newEnv(t)
	fc := person(7)
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "anna@example.it"}, nil); code != 201 {
		t.Fatalf("create profile: %d", code)
	}
	cases := []struct {
		name, body string
		status     int
		field      string
		it, en     string // a part of the detail in each language
	}{
		{"wrong type", `{"is_inbox_enabled":"yes"}`, 400, "is_inbox_enabled", "di tipo boolean", "of type boolean"},
		{"wrong type nested", `{"service_preferences_settings":{"mode":5}}`, 400, "service_preferences_settings.mode", "di tipo string", "of type string"},
		{"unknown field", `{"emial":"typo@example.it"}`, 400, "emial", "Campo sconosciuto", "Unknown field"},
		{"unknown nested field", `{"service_preferences_settings":{"mod":"AUTO"}}`, 400, "service_preferences_settings.mod", "Campo sconosciuto", "Unknown field"},
		{"unknown field with an escape", `{"a\nb":1}`, 400, "a\nb", "Campo sconosciuto", "Unknown field"},
		{"wrong item type", `{"preferred_languages":[1]}`, 400, "preferred_languages", "ogni elemento deve essere di tipo string", "every item must be of type string"},
		{"wrong item type in a map", `{"blocked_inbox_or_channels":{"SRV":[true]}}`, 400, "blocked_inbox_or_channels", "ogni elemento deve essere di tipo string", "every item must be of type string"},
		{"number out of range", `{"version":99999999999999999999}`, 400, "version", "fuori dall'intervallo", "out of the allowed range"},
		{"fraction for an integer", `{"version":1.5}`, 400, "version", "di tipo integer", "of type integer"},
		{"null", `null`, 400, "", "oggetto JSON", "JSON object"},
		{"array", ` [{"email":"a@example.it"}]`, 400, "", "oggetto JSON", "JSON object"},
		{"syntax", `{"email": anna}`, 400, "", "al byte 11", "at byte 11"},
		{"truncated", `{"email":"anna@example.it"`, 400, "", "incompleto", "incomplete"},
		{"empty", ``, 400, "", "vuoto", "empty"},
		{"two objects", `{"email":"a@example.it"}{"email":"b@example.it"}`, 400, "", "altro testo", "more text"},
		{"trailing garbage", `{"email":"b@example.it"} x`, 400, "", "altro testo", "more text"},
		{"too large", `{"email":"` + strings.Repeat("a", maxBody) + `"}`, 413, "", "supera 64 KiB", "larger than 64 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for lang, want := range map[string]string{"it-IT": c.it, "en-GB": c.en} {
				code, fp, title := e.rawCall(fc, "PUT", "/citizen/v1/profile", c.body, lang)
				if code != c.status || fp.Field != c.field || !strings.Contains(fp.Detail, want) || title == "" {
					t.Errorf("%s: status %d, field %q, detail %q, title %q; want %d, %q, %q",
						lang, code, fp.Field, fp.Detail, title, c.status, c.field, want)
				}
			}
		})
	}
	// Nothing of the refused bodies was applied, not even the first of
	// two objects.
	var got Profile
	e.call(fc, "GET", "/citizen/v1/profile", nil, &got)
	if got.Email != "anna@example.it" || got.Version != 0 {
		t.Fatalf("profile after refused bodies: email %q, version %d", got.Email, got.Version)
	}
	// The other endpoints with a body decode the same way.
	for path, body := range map[string]string{
		"/citizen/v1/services/SRV/preferences": `{"is_inbox_enabled":true} {}`,
		"/citizen/v1/messages/MSG/status":      `{"is_read":true} {}`,
	} {
		if code, fp, _ := e.rawCall(fc, "PUT", path, body, "it"); code != 400 || !strings.Contains(fp.Detail, "altro testo") {
			t.Errorf("PUT %s with two objects: %d %+v", path, code, fp)
		}
	}
}
