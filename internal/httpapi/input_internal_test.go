package httpapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// mayRepeatKey, the shortcut of duplicateKey, never clears a body in which
// the decoder finds a repeated key, on valid JSON and on garbage alike;
// and on valid ASCII JSON without escapes it clears exactly the bodies
// without one.
func TestMayRepeatKeyAgreesWithTheDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := []string{`{`, `}`, `[`, `]`, `,`, `:`, `"a"`, `"b"`, `"A"`, `1`, ` `, `"\u0061"`, `"é"`, `"`, `true`}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(24) {
			b.WriteString(tokens[rng.IntN(len(tokens))])
		}
		body := []byte(b.String())
		if _, _, found := duplicateDecodedKey(body); found {
			require.True(t, mayRepeatKey(body), "%s", body)
		}
	}
	// Valid JSON: with plain keys the two agree exactly; with escaped and
	// non-ASCII spellings (keys[6:]) the shortcut leaves it to the decoder.
	keys := []string{`a`, `b`, `c`, `d`, `e`, `A`, `\u0061`, `\u0062`, `é`, `\"`, `x\\`}
	var value func(depth, nkeys int) string
	value = func(depth, nkeys int) string {
		switch n := rng.IntN(4); {
		case depth > 3 || n == 0:
			values := []string{`1`, `"a"`, `"x y"`, `null`, `[]`, `"\""`, `"é"`}
			if nkeys <= 6 {
				values = values[:5]
			}
			return values[rng.IntN(len(values))]
		case n == 1:
			var items []string
			for range rng.IntN(4) {
				items = append(items, value(depth+1, nkeys))
			}
			return "[" + strings.Join(items, ", ") + "]"
		default:
			var members []string
			for range rng.IntN(5) {
				members = append(members, fmt.Sprintf(`"%s" : %s`, keys[rng.IntN(nkeys)], value(depth+1, nkeys)))
			}
			return "{" + strings.Join(members, ",") + "}"
		}
	}
	for range 5000 {
		body := []byte(value(0, 6))
		require.True(t, json.Valid(body), "%s", body)
		_, _, found := duplicateDecodedKey(body)
		require.Equal(t, found, mayRepeatKey(body), "%s", body)

		body = []byte(value(0, len(keys)))
		require.True(t, json.Valid(body), "%s", body)
		if _, _, found := duplicateDecodedKey(body); found {
			require.True(t, mayRepeatKey(body), "%s", body)
		}
	}
	many := `{"k0":0`
	for i := 1; i <= maxScannedKeys; i++ {
		many += fmt.Sprintf(`,"k%d":0`, i)
	}
	require.True(t, mayRepeatKey([]byte(many+"}")), "an object bigger than the scanner compares goes to the decoder")
	_, _, found := duplicateKey([]byte(many + "}"))
	require.False(t, found)
}

func BenchmarkDuplicateKey(b *testing.B) {
	for name, body := range map[string]string{
		"authz-check": `{"permission":"users:lock"}`,
		"nested":      `{"name":"Ada","settings":{"theme":"dark","langs":["en","fr"]},"items":[{"a":1,"b":2},{"a":3,"b":4}]}`,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, found := duplicateKey([]byte(body)); found {
					b.Fatal("found")
				}
			}
		})
		b.Run(name+"/decoder", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, found := duplicateDecodedKey([]byte(body)); found {
					b.Fatal("found")
				}
			}
		})
	}
}
