package citizen

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"sportello/messaging/fiscalcode"
)

// TokenTTL is how long a development token stays valid.
const TokenTTL = 24 * time.Hour

// Identity tells who the citizen behind a request is. In production this is
// the SPID/CIE session of the app backend; here it is DevTokens.
type Identity interface {
	// Authenticate returns the citizen's fiscal code or ErrUnauthenticated.
	Authenticate(r *http.Request) (string, error)
}

// ErrUnauthenticated means no valid credential came with the request.
var ErrUnauthenticated = errors.New("citizen: not authenticated")

var b64 = base64.RawURLEncoding

// IssueToken signs a bearer token for fiscalCode valid 24 h from now:
// "v1.<payload>.<mac>", payload = base64url("CF|expiry-unix").
func IssueToken(key []byte, fiscalCode string, now time.Time) string {
	payload := b64.EncodeToString([]byte(fiscalcode.Normalize(fiscalCode) + "|" + strconv.FormatInt(now.Add(TokenTTL).Unix(), 10)))
	return "v1." + payload + "." + b64.EncodeToString(tokenMAC(key, payload))
}

// tokenMAC binds the token to its purpose so the same server key signing
// something else (push webhooks) can never produce a valid token.
func tokenMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sportello-citizen-token\x00" + payload))
	return m.Sum(nil)
}

// VerifyToken checks signature and expiry and returns the fiscal code.
func VerifyToken(key []byte, token string, now time.Time) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", ErrUnauthenticated
	}
	mac, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(mac, tokenMAC(key, parts[1])) {
		return "", ErrUnauthenticated
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		return "", ErrUnauthenticated
	}
	fc, exp, ok := strings.Cut(string(raw), "|")
	if !ok {
		return "", ErrUnauthenticated
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(e, 0)) || !fiscalcode.ValidPerson(fc) {
		return "", ErrUnauthenticated
	}
	return fc, nil
}

// DevTokens accepts tokens from IssueToken in the Authorization header.
type DevTokens struct {
	Key []byte
	Now func() time.Time
}

// Authenticate implements Identity.
func (d DevTokens) Authenticate(r *http.Request) (string, error) {
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return "", ErrUnauthenticated
	}
	return VerifyToken(d.Key, tok, d.Now())
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
// The scheme is case-insensitive (RFC 7235 §2.1: "bearer", "BEARER" are
// the same scheme) and may be followed by more than one space.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
