// Package channels delivers notices outside the inbox: e-mail through an
// SMTP server and push notifications through a signed webhook. Each sender
// does one attempt and says whether a failure is worth retrying; the
// delivery pipeline owns retries, backoff and expiry.
package channels

import "errors"

// ErrPermanent marks a failure that retrying cannot fix (a refused address,
// a 4xx from the webhook). Wrapped errors without it are temporary.
var ErrPermanent = errors.New("permanent failure")

// Permanent reports whether err should not be retried.
func Permanent(err error) bool { return errors.Is(err, ErrPermanent) }
