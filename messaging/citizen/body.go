package citizen

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
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

// decode reads one JSON object of at most maxBody bytes into v, refusing
// unknown fields (a typo in a field name is an error, not a silent no-op),
// anything but an object (`null` is not an empty update) and anything
// after the object (a doubled body is not half-applied).
func decode(r *http.Request, v any) *bodyError {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &bodyError{status: http.StatusRequestEntityTooLarge, key: "citizen.field.too_large", args: []any{maxBody / 1024}}
	case err != nil:
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.unreadable"}
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.empty"}
	case trimmed[0] != '{':
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.not_object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return classify(err, body, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return &bodyError{status: http.StatusBadRequest, key: "citizen.field.trailing"}
	}
	return nil
}

// classify turns a decoding error into the field problem a client can act
// on: which field has the wrong type or a number out of range, which field
// is unknown, or at which byte the JSON breaks.
func classify(err error, body []byte, target reflect.Type) *bodyError {
	var (
		typeErr *json.UnmarshalTypeError
		syntax  *json.SyntaxError
	)
	bad := func(field, key string, args ...any) *bodyError {
		return &bodyError{status: http.StatusBadRequest, field: field, key: key, args: args}
	}
	switch {
	case errors.As(err, &typeErr):
		want := jsonfield.ExpectedType(typeErr)
		literal, isNumber := strings.CutPrefix(typeErr.Value, "number ")
		switch {
		case isNumber && want == "integer" && !strings.ContainsAny(literal, ".eE"):
			return bad(typeErr.Field, "citizen.field.range")
		case !holdsDirectly(target, typeErr):
			// The error is on an item of a list or map: encoding/json names
			// the field that holds it.
			return bad(typeErr.Field, "citizen.field.items_type", want)
		}
		return bad(typeErr.Field, "citizen.field.type", want)
	case errors.As(err, &syntax):
		return bad("", "citizen.field.syntax", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("", "citizen.field.truncated")
	}
	// encoding/json has no error type for an unknown field; its message is
	// `json: unknown field "name"`, the name quoted with %q.
	if quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = quoted
		}
		return bad(jsonfield.UnknownFieldPath(body, target, name), "citizen.field.unknown")
	}
	return bad("", "citizen.field.unreadable")
}

// holdsDirectly reports whether the field a type error names has the
// mismatched type itself, rather than holding it in a list or map.
func holdsDirectly(target reflect.Type, e *json.UnmarshalTypeError) bool {
	t, ok := jsonfield.FieldType(target, e.Field)
	return ok && t == e.Type
}

// badBody answers a body that decode refused, with the field it points at.
func (a *API) badBody(w http.ResponseWriter, r *http.Request, be *bodyError) {
	a.problem(w, r, be.status, "citizen.error.body",
		fieldProblem{Field: be.field, Detail: a.cat.T(lang(r), be.key, be.args...)})
}
