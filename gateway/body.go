package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"sportello/messaging/jsonfield"
	"sportello/messaging/send"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readJSON reads a size-limited JSON body into v. On failure it writes the
// problem (413, 415 or 400 pointing at the offending field) and returns
// false. The raw body is returned for idempotency hashing; it is only
// valid until release is called.
func (g *Gateway) readJSON(w http.ResponseWriter, r *http.Request, c *call, v any) (raw []byte, release func(), ok bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		// JSON is UTF-8 (RFC 8259): a body declared in another charset
		// (ISO-8859-1 from older systems) would be read as UTF-8 and its
		// accented letters would reach citizens garbled.
		cs, hasCharset := params["charset"]
		if err != nil || (mt != "application/json" && mt != "application/problem+json" && !bytesHasSuffix(mt, "+json")) ||
			(hasCharset && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8")) {
			g.problem(w, r, c, http.StatusUnsupportedMediaType, "media_type", nil)
			return nil, nil, false
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	release = func() { bufPool.Put(buf) }
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		release()
		g.problem(w, r, c, http.StatusRequestEntityTooLarge, "too_large", nil, g.cfg.MaxBody)
		return nil, nil, false
	case err != nil:
		release()
		g.problem(w, r, c, http.StatusBadRequest, "bad_body", nil)
		return nil, nil, false
	}
	if !utf8.Valid(buf.Bytes()) {
		// encoding/json would turn the bad bytes into U+FFFD and store the
		// message garbled: refuse it, saying where.
		release()
		g.problem(w, r, c, http.StatusBadRequest, "bad_json", []send.FieldError{{Rule: send.RuleEncoding, Value: firstInvalidUTF8(buf.Bytes())}})
		return nil, nil, false
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		release()
		g.problem(w, r, c, http.StatusBadRequest, "bad_json", []send.FieldError{jsonFieldError(err)})
		return nil, nil, false
	}
	return buf.Bytes(), release, true
}

// firstInvalidUTF8 is the byte offset of the first byte that is not UTF-8.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func bytesHasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// jsonFieldError turns a decoding error into a field error: a type error
// names the field and the expected type, a syntax error its byte offset.
func jsonFieldError(err error) send.FieldError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return send.FieldError{Field: te.Field, Rule: send.RuleType, Limit: jsonfield.ExpectedType(te), Value: te.Value}
	case errors.As(err, &se):
		return send.FieldError{Field: "", Rule: send.RuleSyntax, Value: se.Offset}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return send.FieldError{Field: "", Rule: send.RuleSyntax}
	default:
		return send.FieldError{Field: "", Rule: send.RuleUnknownBody}
	}
}

// writeJSON writes a successful answer with the call's rate-limit headers.
func (g *Gateway) writeJSON(w http.ResponseWriter, c *call, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":500}`)
	}
	g.writeRaw(w, c, status, b)
}

func (g *Gateway) writeRaw(w http.ResponseWriter, c *call, status int, b []byte) {
	c.status = status
	c.limits.set(w)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
