package portal

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"testing"

	"sportello/messaging/send"
)

// The page's first message is what integrators paste first: it must be a
// message the gateway accepts.
func TestAPIDocsFirstMessageIsValid(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient()
	r := c.get("/docs/api")
	if r.Status != http.StatusOK {
		t.Fatalf("%d", r.Status)
	}
	m := regexp.MustCompile(`(?s)/api/v1/messages/([A-Z0-9]{16})" \\.*?-d '(\{.*?\})'</code>`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatal("no curl example with a body on the page")
	}
	var msg send.NewMessage
	if err := json.Unmarshal([]byte(html.UnescapeString(m[2])), &msg); err != nil {
		t.Fatalf("example body is not JSON: %v\n%s", err, m[2])
	}
	msg.FiscalCode = m[1]
	if errs := send.Validate(&msg, send.Limits{}); len(errs) > 0 {
		t.Fatalf("the example would be refused: %+v", errs)
	}
}
