package citizen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"sportello/messaging/jsonfield"
)

// maxBody bounds every citizen request body: the largest legitimate one
// (a profile with its languages and blocked channels) is well under 1 KiB.
const maxBody = 64 << 10

// bodyError is a request body that could not be read: the status to answer
// and the field problem that says where and why, as message-catalog keys
// so the answer is in the citizen's language.
type bodyError struct {
	status int
	field  string
	key    string
	args   []any
}

func (e *bodyError) Error() string { return fmt.Sprintf("body: %s %s", e.field, e.key) }

// decode reads one JSON object of at most maxBody bytes into v, refusing
// unknown fields (a typo in a field name is an error, not a silent no-op)
// and anything after the object (a truncated or doubled body is not
// half-applied).
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return classify(err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return classify(err)
		}
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.trailing"}
	}
	return nil
}

// classify turns a decoding error into the field problem a client can act
// on: which field has the wrong type, which field is unknown, or at which
// byte the JSON breaks.
func classify(err error) *bodyError {
	var (
		tooBig  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		syntax  *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooBig):
		return &bodyError{status: http.StatusRequestEntityTooLarge, key: "citizen.field.too_large", args: []any{maxBody / 1024}}
	case errors.Is(err, io.EOF):
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.empty"}
	case errors.As(err, &typeErr):
		return &bodyError{status: http.StatusBadRequest, field: typeErr.Field, key: "citizen.field.type", args: []any{jsonfield.ExpectedType(typeErr)}}
	case errors.As(err, &syntax):
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.syntax", args: []any{syntax.Offset}}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.truncated"}
	}
	// encoding/json has no error type for an unknown field; its message is
	// `json: unknown field "name"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &bodyError{status: http.StatusBadRequest, field: strings.Trim(name, `"`), key: "citizen.field.unknown"}
	}
	return &bodyError{status: http.StatusBadRequest, key: "citizen.field.unreadable"}
}

// badBody answers a body that decode refused, with the field it points at.
func (a *API) badBody(w http.ResponseWriter, r *http.Request, err error) {
	var be *bodyError
	if !errors.As(err, &be) {
		be = &bodyError{status: http.StatusBadRequest, key: "citizen.field.unreadable"}
	}
	a.problem(w, r, be.status, "citizen.error.body",
		fieldProblem{Field: be.field, Detail: a.cat.T(lang(r), be.key, be.args...)})
}
