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
	if mt, params, err := mime.ParseMediaType(ct); err == nil && ct != "" && !strings.HasPrefix(ct, mt) {
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
				if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
					w.Header().Set("Connection", "close")
					writeProblem(w, r, tooLargeProblem(tooLarge.Limit))
					return
				}
				WriteProblem(w, r, gatehouse.Errorf(gatehouse.CodeMalformedJSON, "the request body could not be read"))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
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

// jsonBody reports whether r has a body Huma would decode as JSON: one
// declared JSON, or one with no content type at all.
func jsonBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
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
