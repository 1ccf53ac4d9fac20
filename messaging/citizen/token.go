package citizen

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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
// ErrTokenExpired and ErrTokenInvalid are kinds of it (errors.Is holds)
// that say why a token that did come was refused.
var (
	ErrUnauthenticated = errors.New("citizen: not authenticated")
	// ErrTokenExpired: a token this server signed, past its expiry.
	ErrTokenExpired = fmt.Errorf("%w: token expired", ErrUnauthenticated)
	// ErrTokenInvalid: not a token this server signed (malformed,
	// altered, signed with another key) or not for a person.
	ErrTokenInvalid = fmt.Errorf("%w: token not valid", ErrUnauthenticated)
)

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
// The signature is checked first: only a token this server signed can be
// called expired (ErrTokenExpired); anything else is ErrTokenInvalid.
func VerifyToken(key []byte, token string, now time.Time) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", ErrTokenInvalid
	}
	mac, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(mac, tokenMAC(key, parts[1])) {
		return "", ErrTokenInvalid
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		return "", ErrTokenInvalid
	}
	fc, exp, ok := strings.Cut(string(raw), "|")
	if !ok {
		return "", ErrTokenInvalid
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !fiscalcode.ValidPerson(fc) {
		return "", ErrTokenInvalid
	}
	if !now.Before(time.Unix(e, 0)) {
		return "", ErrTokenExpired
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
