// Package jsonfield names what went wrong in a JSON request body in the
// terms an integrator reads in the API description, not in Go's.
package jsonfield

import (
	"encoding/json"
	"reflect"
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
