package jsonfield

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestExpectedType(t *testing.T) {
	var v struct {
		S string          `json:"s"`
		B bool            `json:"b"`
		I int64           `json:"i"`
		U uint8           `json:"u"`
		F float64         `json:"f"`
		L []string        `json:"l"`
		O struct{ X int } `json:"o"`
		M map[string]int  `json:"m"`
	}
	for body, want := range map[string]string{
		`{"s":1}`: "string", `{"b":"x"}`: "boolean", `{"i":"1"}`: "integer", `{"u":true}`: "integer",
		`{"f":"1"}`: "number", `{"l":{}}`: "array", `{"o":[]}`: "object", `{"m":1}`: "object",
		`{"i":1.5}`: "integer",
	} {
		var te *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(body), &v); !errors.As(err, &te) {
			t.Fatalf("%s: %v, want a type error", body, err)
		}
		if got := ExpectedType(te); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}
