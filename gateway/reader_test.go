package gateway_test

import (
	"io"
	"strings"
)

type stringsReader = strings.Reader

func newStringsReader(s string) *stringsReader { return strings.NewReader(s) }

// orNil keeps a nil *strings.Reader from becoming a non-nil io.Reader.
func orNilReader(r *strings.Reader) io.Reader {
	if r == nil {
		return nil
	}
	return r
}
