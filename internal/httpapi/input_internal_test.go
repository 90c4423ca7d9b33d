package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// duplicateKey finds a key repeated within one object at any depth, names
// where, compares keys as decoded, and leaves malformed JSON alone.
func TestDuplicateKey(t *testing.T) {
	for body, want := range map[string]string{
		`{"password":"a","password":"b"}`:                                             "body.password",
		`{"a":{"b":1,"c":{"d":1,"d":2}}}`:                                             "body.a.c.d",
		`{"items":[{"x":1},{"x":1,"y":2,"x":3}]}`:                                     "body.items[1].x",
		`[[],{"k":1},{"k":1,"k":1}]`:                                                  "body[2].k",
		`{"email":"a","em\u0061il":"b"}`:                                              "body.email",
		`{"a":[1,{"b":[{"c":0,"c":0}]}]}`:                                             "body.a[1].b[0].c",
		`{"` + strings.Repeat("k", 100) + `":1,"` + strings.Repeat("k", 100) + `":2}`: "body." + strings.Repeat("k", 64) + "…",
	} {
		at, _, ok := duplicateKey([]byte(body))
		require.True(t, ok, body)
		require.Equal(t, want, at, body)
	}
	for _, body := range []string{
		`{}`, `[]`, `"x"`, `{"a":{"a":{"a":1}}}`, `[{"a":1},{"a":1}]`, `{"a":1,"A":2}`,
		`{"a":1,"b":{"a":1},"c":[{"a":1}]}`,
		`{"a":1,,"a":2}`, `not json`, ``,
	} {
		_, _, ok := duplicateKey([]byte(body))
		require.False(t, ok, body)
	}
}
