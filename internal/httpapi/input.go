package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-auth/gatehouse"
)

// storableText reports whether s can be compared with a text column on
// every engine: PostgreSQL refuses invalid UTF-8 and U+0000 in a text
// parameter with an error, which would otherwise surface as a 500.
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// cleanUserAgent replaces the bytes of a User-Agent that are not UTF-8
// (HTTP allows them in header values) with U+FFFD, once, before anything
// records it: PostgreSQL refuses such text, so a hostile header would
// otherwise fail every audited write of the request. Header values never
// hold NUL; net/http refuses control characters.
func cleanUserAgent(r *http.Request) {
	if ua := r.Header.Get("User-Agent"); !utf8.ValidString(ua) {
		r.Header.Set("User-Agent", strings.ToValidUTF8(ua, "\uFFFD"))
	}
}

// lowerMediaType rewrites a Content-Type whose media type is not in lower
// case ("APPLICATION/JSON"): media types are case-insensitive, Huma's
// matching of them is not.
func lowerMediaType(r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if ct == "" || commonMediaType(ct) {
		return
	}
	if mt, params, err := mime.ParseMediaType(ct); err == nil && !strings.HasPrefix(ct, mt) {
		r.Header.Set("Content-Type", mime.FormatMediaType(mt, params))
	}
}

// rejectUnstorable answers requests carrying text no engine can store or
// compare before any handler sees them: a path that is not UTF-8 or holds
// NUL names no resource (404), and a query parameter or a JSON string of
// the body that does is refused (422) naming it. SQLite would accept such
// text where PostgreSQL fails, so without this the two engines would
// answer differently, one of them with a 500.
func (s *Server) rejectUnstorable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !storableText(r.URL.Path) {
			writeProblem(w, r, newProblem(http.StatusNotFound, "no such resource"))
			return
		}
		if err := unstorableQuery(r); err != nil {
			WriteProblem(w, r, err)
			return
		}
		lowerMediaType(r)
		if jsonBody(r) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				WriteProblem(w, r, bodyReadError(w, err))
				return
			}
			r.Body = newReadBody(body)
			if field, ok := nulField(body); ok {
				WriteProblem(w, r, gatehouse.InvalidField(field, "must not contain NUL characters (\\u0000)"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// secretFields are the request fields (top-level body properties and
// query parameters) that carry a secret: a password, a token, a code. They
// are hashed or compared in memory, never stored or queried as text, and a
// malformed one must be answered like any wrong secret (401 invalid
// credentials, 400 invalid_token...), not told apart by a 422.
var secretFields = map[string]bool{
	"password": true, "current_password": true, "new_password": true,
	"refresh_token": true, "token": true, "code": true, "ticket": true,
}

// unstorableQuery names the first query parameter whose name or value is
// not storable text; secret parameters are left to their handlers.
func unstorableQuery(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q := r.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if secretFields[k] || storableText(k) && !slices.ContainsFunc(q[k], func(v string) bool { return !storableText(v) }) {
			continue
		}
		return gatehouse.InvalidField("query."+strings.ToValidUTF8(strings.ReplaceAll(k, "\x00", ""), "\uFFFD"),
			"must be UTF-8 text without NUL characters")
	}
	return nil
}

// jsonBody reports whether r has a body declared JSON. A body without a
// content type is never decoded: an operation taking a body refuses it
// (strictJSONBody), the others ignore it.
func jsonBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && declaredJSON(r)
}

// declaredJSON reports whether r's Content-Type is application/json or a
// +json type.
func declaredJSON(r *http.Request) bool {
	mt, err := mediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// commonMediaType reports whether ct is a Content-Type nearly every JSON
// request or answer carries, spelled as mime.ParseMediaType would return
// it: it can skip that parse (which allocates its parameter map).
func commonMediaType(ct string) bool {
	switch ct {
	case "application/json", "application/problem+json":
		return true
	}
	return false
}

// mediaType is the media type of a Content-Type, as mime.ParseMediaType
// reads it.
func mediaType(ct string) (string, error) {
	if commonMediaType(ct) {
		return ct, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	return mt, err
}

// strictJSON makes Huma's validation match object keys to the schema's
// property names exactly. By default it (like encoding/json) takes
// {"Password": ...} for "password"; with every request body schema closed
// (additionalProperties false, Huma's default for structs, checked by
// TestRequestBodySchemasAreClosed) a key matching a property only
// case-insensitively is now an unexpected property (422), and the body
// never reaches the case-insensitive decoder. It is a process-wide Huma
// setting; Gatehouse runs one API.
func init() { huma.ValidateStrictCasing = true }

// applyJSONBody gives every operation that takes a JSON body the
// strictJSONBody checks, before anything else it runs.
func (s *Server) applyJSONBody(_ *huma.OpenAPI, op *huma.Operation) {
	if op.RequestBody == nil || op.RequestBody.Content["application/json"] == nil {
		return
	}
	op.Middlewares = append(huma.Middlewares{strictJSONBody}, op.Middlewares...)
}

// strictJSONBody refuses, for an operation taking a JSON body, a
// non-empty body not declared application/json (or +json) with 415, and
// a JSON body repeating a key within one object with 400 malformed_json.
// Without the first, a plain HTML form or a no-cors fetch (which send no
// preflight) could post a body the API decodes as JSON: login CSRF. An
// empty body goes on to the operation as before (which answers a missing
// required body itself).
func strictJSONBody(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	empty, err := bodyEmpty(r)
	switch {
	case err != nil:
		WriteProblem(w, r, bodyReadError(w, err))
		return
	case empty:
		next(ctx)
		return
	case !declaredJSON(r):
		WriteProblem(w, r, gatehouse.Errorf(CodeUnsupportedMedia, "send the body as JSON with Content-Type: application/json"))
		return
	}
	body, read := bufferedBody(r)
	if !read {
		if body, err = io.ReadAll(r.Body); err != nil {
			WriteProblem(w, r, bodyReadError(w, err))
			return
		}
		r.Body = newReadBody(body)
	}
	if at, key, ok := duplicateKey(body); ok {
		msg := fmt.Sprintf("the key %q appears twice in one object; send it once", key)
		WriteProblem(w, r, &gatehouse.Error{Code: CodeMalformedJSON, Message: msg,
			Fields: []gatehouse.FieldError{{Location: at, Message: msg}}})
		return
	}
	next(ctx)
}

// bodyEmpty reports whether r has no body octets, reading one at most
// (and putting it back) when the length is not declared.
func bodyEmpty(r *http.Request) (bool, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return true, nil
	}
	if body, ok := bufferedBody(r); ok {
		return len(body) == 0, nil
	}
	if r.ContentLength > 0 {
		return false, nil
	}
	var b [1]byte
	n, err := io.ReadFull(r.Body, b[:])
	if n == 0 {
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		return false, err
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b[:n]), r.Body), r.Body}
	return false, nil
}

// readBody is a request body read into memory. The checks after the one
// that read it take its bytes from bufferedBody instead of copying them
// again.
type readBody struct {
	*bytes.Reader
	data []byte
}

func newReadBody(data []byte) *readBody { return &readBody{Reader: bytes.NewReader(data), data: data} }

func (*readBody) Close() error { return nil }

// bufferedBody returns r's body when it is a readBody nothing has read
// from yet.
func bufferedBody(r *http.Request) ([]byte, bool) {
	b, ok := r.Body.(*readBody)
	if !ok || b.Len() != len(b.data) {
		return nil, false
	}
	return b.data, true
}

// bodyReadError answers a body that could not be read: 413 past the
// limit (closing the connection, as limitBody does), else malformed.
func bodyReadError(w http.ResponseWriter, err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		w.Header().Set("Connection", "close")
		return err
	}
	return gatehouse.Errorf(CodeMalformedJSON, "the request body could not be read")
}

// maxEchoedKey bounds a key quoted back in an error.
const maxEchoedKey = 64

// duplicateKey finds the first object key of body that its object
// already had (encoding/json would keep the last value, so a proxy or
// validator reading the first would disagree with the server), at any
// depth, and returns its location ("body.a[2].b") and the key. Keys are
// compared as decoded, so an escaped spelling of a key is the same key.
// Malformed JSON is left to the decoder, which names the fault (unless a
// key repeats before the fault: malformed_json either way).
//
// Nearly every body has no repeated key, and most are short ASCII without
// escapes: mayRepeatKey clears those with one pass over the bytes, and only
// the others are decoded token by token.
func duplicateKey(body []byte) (at, key string, found bool) {
	if !mayRepeatKey(body) {
		return "", "", false
	}
	return duplicateDecodedKey(body)
}

// maxScannedKeys is the most keys one object may have for mayRepeatKey to
// compare them pairwise; an object with more goes to the decoder.
const maxScannedKeys = 32

// mayRepeatKey reports false only when no object of body repeats a key:
// body is ASCII without a backslash (so every key is spelled as it
// decodes, and a string ends at the next quote) and no object has a key
// twice, among at most maxScannedKeys each. Anything else (non-ASCII text,
// escapes, a big object, a repeated key, or a string left open) is true:
// the decoder decides. On malformed JSON it may be false where the decoder
// would stop at the fault; the decoder finds repeats only before a fault,
// where the two read the same structure.
func mayRepeatKey(body []byte) bool {
	type frame struct {
		object  bool
		wantKey bool
		keys    int // where this object's keys start in keys
	}
	var (
		stackBuf [16]frame
		keysBuf  [16][]byte
		stack    = stackBuf[:0]
		keys     = keysBuf[:0]
	)
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= utf8.RuneSelf || c == '\\':
			return true
		case c == '"':
			end := bytes.IndexByte(body[i+1:], '"')
			if end < 0 {
				return true
			}
			str := body[i+1 : i+1+end]
			i += end + 1
			for _, c := range str {
				if c >= utf8.RuneSelf || c == '\\' {
					return true
				}
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				top := &stack[n-1]
				for _, k := range keys[top.keys:] {
					if bytes.Equal(k, str) {
						return true
					}
				}
				if len(keys)-top.keys >= maxScannedKeys {
					return true
				}
				keys = append(keys, str)
				top.wantKey = false
			}
		case c == '{':
			stack = append(stack, frame{object: true, wantKey: true, keys: len(keys)})
		case c == '[':
			stack = append(stack, frame{keys: len(keys)})
		case c == '}' || c == ']':
			if len(stack) == 0 {
				return true
			}
			keys = keys[:stack[len(stack)-1].keys]
			stack = stack[:len(stack)-1]
		case c == ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].wantKey = true
			}
		}
	}
	return false
}

// duplicateDecodedKey is duplicateKey reading body with encoding/json's
// tokenizer.
func duplicateDecodedKey(body []byte) (at, key string, found bool) {
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
		at      string
		name    string // object: the key of the value being read
		index   int    // array: the index of the next element
	}
	var stack []*frame
	child := func() string {
		if len(stack) == 0 {
			return "body"
		}
		top := stack[len(stack)-1]
		if top.object {
			return top.at + "." + echoKey(top.name)
		}
		return fmt.Sprintf("%s[%d]", top.at, top.index)
	}
	// valueDone records in the parent that one of its values ended.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF, or malformed
			return "", "", false
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top := stack[n-1]
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return top.at + "." + echoKey(k), echoKey(k), true
				}
				top.keys[k] = true
				top.name, top.wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true, at: child()})
		case json.Delim('['):
			stack = append(stack, &frame{at: child()})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// echoKey is a key as an error may quote it: valid UTF-8, bounded.
func echoKey(k string) string {
	k = strings.ToValidUTF8(k, "\uFFFD")
	if len(k) > maxEchoedKey {
		k = strings.ToValidUTF8(k[:maxEchoedKey], "") + "…"
	}
	return k
}

// nulField finds a JSON string of body, or an object key, holding U+0000
// and returns where it is ("body.devices[2].name"); top-level secret
// fields are left to their handlers. JSON spells that
// character only as the escape \u0000, so a body without that text is
// answered at once; a body that is not JSON is left to the decoder.
func nulField(body []byte) (string, bool) {
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return "", false
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "", false
	}
	return findNUL(v, "body")
}

func findNUL(v any, at string) (string, bool) {
	switch v := v.(type) {
	case string:
		return at, strings.ContainsRune(v, 0)
	case []any:
		for i, e := range v {
			if field, ok := findNUL(e, fmt.Sprintf("%s[%d]", at, i)); ok {
				return field, true
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if strings.ContainsRune(k, 0) {
				return at, true
			}
			if at == "body" && secretFields[k] {
				continue
			}
			if field, ok := findNUL(v[k], at+"."+k); ok {
				return field, true
			}
		}
	}
	return "", false
}
