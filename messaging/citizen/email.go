package citizen

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// E-mail validation, as in IO: a new address is not validated, so no
// notice goes to it until the citizen opens the link mailed to it. The mail
// is written to mail_outbox; the delivery pipeline sends it when SMTP is
// configured, and platform admins can read it in the console otherwise.

// ValidationTTL is how long a validation link works.
const ValidationTTL = 7 * 24 * time.Hour

func emailMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sportello-email-validation\x00" + payload))
	return m.Sum(nil)
}

func emailToken(key []byte, fc, email string, now time.Time) string {
	payload := b64.EncodeToString([]byte(fc + "|" + email + "|" + strconv.FormatInt(now.Add(ValidationTTL).Unix(), 10)))
	return payload + "." + b64.EncodeToString(emailMAC(key, payload))
}

func verifyEmailToken(key []byte, tok string, now time.Time) (fc, email string, err error) {
	payload, sig, ok := strings.Cut(tok, ".")
	mac, derr := b64.DecodeString(sig)
	if !ok || derr != nil || !hmac.Equal(mac, emailMAC(key, payload)) {
		return "", "", ErrUnauthenticated
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		return "", "", ErrUnauthenticated
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return "", "", ErrUnauthenticated
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", "", ErrUnauthenticated
	}
	return parts[0], parts[1], nil
}

// queueValidation writes the validation mail inside the caller's tx.
func (a *API) queueValidation(ctx context.Context, tx *sqlx.Tx, p *profileRow) error {
	l := languageOf(p.PreferredLanguages)
	link := strings.TrimRight(a.cfg.BaseURL, "/") + "/citizen/email-validation?token=" + emailToken(a.cfg.EmailKey, p.FiscalCode, p.Email, a.now())
	// fiscal_code ties the mail to the citizen: account deletion deletes it
	// by that, whatever the address was, and only this citizen's (0030).
	_, err := tx.ExecContext(ctx, `INSERT INTO mail_outbox (message_id, fiscal_code, to_addr, subject, body, created_at) VALUES (NULL, ?, ?, ?, ?, ?)`,
		p.FiscalCode, p.Email, a.cat.T(l, "citizen.mail.validate_subject"), a.cat.T(l, "citizen.mail.validate_body", link), a.now())
	return err
}

var errNothingToValidate = errors.New("no address waiting for validation")

// startValidation (re)sends the validation mail for the current address.
func (a *API) startValidation(ctx context.Context, fc string) error {
	return a.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		p, err := loadProfile(ctx, tx, fc)
		if err != nil {
			return err
		}
		if p.Email == "" || p.IsEmailValidated {
			return errNothingToValidate
		}
		return a.queueValidation(ctx, tx, p)
	})
}

func (a *API) postEmailValidation(w http.ResponseWriter, r *http.Request, fc string) {
	err := a.startValidation(r.Context(), fc)
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_profile")
	case errors.Is(err, errNothingToValidate):
		a.problem(w, r, http.StatusConflict, "citizen.error.nothing_to_validate")
	case err != nil:
		a.serverError(w, r, err)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

var validationPage = template.Must(template.New("v").Parse(`<!doctype html><html lang="{{.Lang}}"><head><meta charset="utf-8">` +
	`<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title></head>` +
	`<body><main><h1>{{.Title}}</h1><p>{{.Text}}</p></main></body></html>`))

// confirmEmail is the link in the validation mail. It validates the
// address only if it is still the profile's address.
func (a *API) confirmEmail(w http.ResponseWriter, r *http.Request) {
	l := lang(r)
	ok := false
	fc, email, err := verifyEmailToken(a.cfg.EmailKey, r.URL.Query().Get("token"), a.now())
	if err == nil {
		err = a.db.WriteTx(r.Context(), func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(r.Context(), `UPDATE profiles SET is_email_validated = 1, updated_at = ?
				WHERE fiscal_code = ? AND email = ?`, a.now(), fc, email)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			ok = n == 1
			return nil
		})
		if err != nil {
			a.log.Error("email validation", "err", err)
		}
	}
	key, status := "citizen.mail.validated", http.StatusOK
	if !ok {
		key, status = "citizen.mail.invalid_link", http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = validationPage.Execute(w, map[string]string{"Lang": l, "Title": a.cat.T(l, "citizen.mail.validate_subject"), "Text": a.cat.T(l, key)})
}
