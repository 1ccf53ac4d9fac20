package jsonfield

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
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

func TestUnknownFieldPath(t *testing.T) {
	type inner struct {
		Mode string `json:"mode"`
	}
	type body struct {
		Email    *string              `json:"email"`
		Settings *inner               `json:"settings"`
		Blocked  *map[string][]string `json:"blocked"`
		List     []inner              `json:"list"`
		Plain    int
	}
	for in, want := range map[string]string{
		`{"emial":"a"}`:                                            "emial",
		`{"settings":{"mod":"AUTO"}}`:                              "settings.mod",
		`{"email":"a","settings":{"mode":"x","y":1}}`:              "settings.y",
		`{"blocked":{"any":["x"]},"zz":1}`:                         "zz",
		`{"list":[{"mode":"a"},{"mode":"b","q":2}]}`:               "list[1].q",
		`{"EMAIL":"a","plain":1,"Settings":{"MODE":"x"},"x\ny":1}`: "x\ny",
	} {
		var v body
		dec := json.NewDecoder(strings.NewReader(in))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("%s: %v, want an unknown-field error", in, err)
		}
		if got := UnknownFieldPath([]byte(in), reflect.TypeOf(v), "?"); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	if got := UnknownFieldPath([]byte(`{"email":"a"}`), reflect.TypeOf(body{}), "leaf"); got != "leaf" {
		t.Errorf("no unknown key: %q, want the leaf given", got)
	}
}

func TestFieldType(t *testing.T) {
	type inner struct {
		Mode string `json:"mode"`
	}
	type body struct {
		Langs    *[]string `json:"preferred_languages"`
		Settings *inner    `json:"settings"`
		Version  int
	}
	target := reflect.TypeOf(&body{})
	for path, want := range map[string]reflect.Type{
		"preferred_languages": reflect.TypeOf([]string{}),
		"settings":            reflect.TypeOf(inner{}),
		"settings.mode":       reflect.TypeOf(""),
		"version":             reflect.TypeOf(0),
	} {
		if got, ok := FieldType(target, path); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", path, got, ok, want)
		}
	}
	for _, path := range []string{"nope", "settings.nope", "preferred_languages.x", "version.x"} {
		if got, ok := FieldType(target, path); ok {
			t.Errorf("%s: %v, want none", path, got)
		}
	}
}
