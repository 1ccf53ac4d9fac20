package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Signature headers of a push webhook call. The receiver recomputes
// HMAC-SHA256(secret, timestamp + "." + body) and compares it in constant
// time; the timestamp lets it refuse replays of old calls.
const (
	HeaderSignature = "X-Sportello-Signature" // "sha256=<hex>"
	HeaderTimestamp = "X-Sportello-Timestamp" // Unix seconds
	HeaderDelivery  = "X-Sportello-Delivery"  // message id, stable across retries
)

// Push posts notifications to the configured webhook.
type Push struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

// Sign returns the signature header value for body at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header (for receivers and tests).
func Verify(secret []byte, ts int64, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(header))
}

// Send posts body (JSON). 2xx is success; 408, 429 and 5xx and network
// errors are temporary; other 4xx are permanent (the receiver refuses it).
// Redirects are not followed and a 3xx is a permanent failure: Go's client
// answers a 301/302/303 with a body-less GET, whose 200 looked like a
// delivered notice, and would carry the signed headers to wherever the
// redirect points. The configured URL is the receiver; a redirect means
// it is configured wrongly.
func (p *Push) Send(ctx context.Context, deliveryID string, body []byte) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	ts := now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push request: %w: %w", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(p.Secret, ts, body))
	req.Header.Set(HeaderDelivery, deliveryID)
	c := http.Client{Timeout: 10 * time.Second}
	if p.Client != nil {
		c = *p.Client // a copy: the caller's client keeps its own redirect policy
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("push: status %d", resp.StatusCode)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("push: status %d (redirect to %q not followed): %w", resp.StatusCode, resp.Header.Get("Location"), ErrPermanent)
	default:
		return fmt.Errorf("push: status %d: %w", resp.StatusCode, ErrPermanent)
	}
}
