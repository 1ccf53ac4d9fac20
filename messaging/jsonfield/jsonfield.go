// Package jsonfield names what went wrong in a JSON request body in the
// terms an integrator reads in the API description, not in Go's.
package jsonfield

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// ExpectedType names the type a field needed, the way JSON Schema (and so
// the OpenAPI document) does: a Go int64 is an "integer", a slice an
// "array", a struct or map an "object".
func ExpectedType(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

// UnknownFieldPath finds where in body the first key that target's type
// does not have sits, as a path (`service_preferences_settings.mod`,
// `list[1].q`); a map's keys are never unknown. encoding/json names only
// the key itself, and a client needs the path to find it. Keys are matched
// to fields as encoding/json does: by the json tag's name, else the
// field's, ignoring case. It returns leaf when body does not show such a
// key (it should, for the body that produced the error).
func UnknownFieldPath(body []byte, target reflect.Type, leaf string) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if path, ok := findUnknown(dec, target, ""); ok {
		return path
	}
	return leaf
}

// findUnknown reads one JSON value from dec, which should decode into t,
// and returns the path of the first object key t has no field for.
func findUnknown(dec *json.Decoder, t reflect.Type, prefix string) (string, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return "", false
	}
	switch tok {
	case json.Delim('{'):
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", false
			}
			key, _ := kt.(string)
			path := key
			if prefix != "" {
				path = prefix + "." + key
			}
			var next reflect.Type // nil: any value goes (interface, or skipped)
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				f, ok := fieldFor(t, key)
				if !ok {
					return path, true
				}
				next = f
			case t.Kind() == reflect.Map:
				next = t.Elem()
			}
			if p, ok := findUnknown(dec, next, path); ok {
				return p, true
			}
		}
		_, _ = dec.Token() // '}'
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if p, ok := findUnknown(dec, elem, fmt.Sprintf("%s[%d]", prefix, i)); ok {
				return p, true
			}
		}
		_, _ = dec.Token() // ']'
	}
	return "", false
}

// fieldFor is the type of struct t's field that JSON key decodes into.
func fieldFor(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f.Type, true
		}
	}
	return nil, false
}

// FieldType is the type (pointers removed) of the field at a dotted path
// of JSON names in struct type target, as encoding/json's type errors name
// it (`service_preferences_settings.mode`); false when there is none.
func FieldType(target reflect.Type, path string) (reflect.Type, bool) {
	cur := target
	for _, name := range strings.Split(path, ".") {
		for cur.Kind() == reflect.Pointer {
			cur = cur.Elem()
		}
		if cur.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := fieldFor(cur, name)
		if !ok {
			return nil, false
		}
		cur = f
	}
	for cur.Kind() == reflect.Pointer {
		cur = cur.Elem()
	}
	return cur, true
}
