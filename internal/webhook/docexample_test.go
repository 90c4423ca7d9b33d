package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// The Go receiver of docs/api.md ("Verifying the signature"), verbatim
// from "// tolerance" to the end of verify (named docVerify here): TestDocsGoVerifierIsTheTestedOne
// keeps the two the same, TestDocsGoVerifierOnRealDeliveries runs it.

// BEGIN docs/api.md
// tolerance is how far webhook-timestamp may be from this machine's clock.
const tolerance = 5 * time.Minute

// docVerify checks a Standard Webhooks signature; secret is the whsec_ value
// from the create answer, body the raw request body.
func docVerify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not whsec_ + base64")
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return errors.New("missing or malformed webhook-id / webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp is too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	// The header may carry several space-separated signatures ("v1,<b64> v1,<b64>").
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, value, _ := strings.Cut(sig, ",")
		if version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) { // constant-time
			return nil
		}
	}
	return errors.New("no valid signature")
}

// END docs/api.md

func between(t *testing.T, text, from, to string) string {
	t.Helper()
	_, rest, ok := strings.Cut(text, from)
	require.True(t, ok, "no %q", from)
	out, _, ok := strings.Cut(rest, to)
	require.True(t, ok, "no %q after %q", to, from)
	return strings.TrimSpace(out)
}

func TestDocsGoVerifierIsTheTestedOne(t *testing.T) {
	self, err := os.ReadFile("docexample_test.go")
	require.NoError(t, err)
	doc, err := os.ReadFile("../../docs/api.md")
	require.NoError(t, err)
	tested := between(t, string(self), "// BEGIN docs/api.md\n", "// END docs/api.md")
	// Named apart here (this package has a verify of its own).
	tested = strings.ReplaceAll(tested, "docVerify", "verify")
	inDoc := between(t, string(doc), "**Go** (standard library):", "func main()")
	require.Contains(t, inDoc, tested, "docs/api.md's Go verify must be the one tested here; copy it over")
}

// TestDocsGoVerifierOnRealDeliveries runs the documented verifier on a
// delivery from a real server, and on forgeries of it.
func TestDocsGoVerifierOnRealDeliveries(t *testing.T) {
	t.Parallel()
	type delivery struct {
		h    http.Header
		body []byte
	}
	var mu sync.Mutex
	var got []delivery
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	env := newEnv(t, "sqlite", true)
	u := signUp(env, "doc-verifier@example.com")
	_, secret := createHook(t, env, u.token, receiver.URL+"/hooks/gatehouse", "user.login")
	env.Login(u.email, apptest.StrongPassword)
	waitFor(t, "a delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	d := got[0]
	mu.Unlock()
	now := env.Clock.Now()

	require.NoError(t, docVerify(secret, d.h, d.body, now), "a genuine delivery")
	require.NoError(t, docVerify(secret, d.h, d.body, now.Add(4*time.Minute)), "within the tolerance")

	forged := func(change func(h http.Header) []byte) error {
		h := d.h.Clone()
		body := change(h)
		if body == nil {
			body = d.body
		}
		return docVerify(secret, h, body, now)
	}
	require.Error(t, forged(func(http.Header) []byte {
		return append([]byte(nil), append(d.body[:len(d.body)-1:len(d.body)-1], ' ', '}')...)
	}), "changed body")
	require.Error(t, forged(func(h http.Header) []byte { h.Set("webhook-id", "other"); return nil }), "other id")
	require.Error(t, forged(func(h http.Header) []byte { h.Del("webhook-timestamp"); return nil }), "no timestamp")
	require.Error(t, forged(func(h http.Header) []byte {
		h.Set("webhook-signature", "v2,"+strings.TrimPrefix(h.Get("webhook-signature"), "v1,"))
		return nil
	}), "no v1 signature")
	require.Error(t, docVerify(secret, d.h, d.body, now.Add(6*time.Minute)), "stale")
	require.Error(t, docVerify(secret, d.h, d.body, now.Add(-6*time.Minute)), "from the future")
	require.Error(t, docVerify("whsec_"+base64.StdEncoding.EncodeToString([]byte("another secret, 32 bytes long..")), d.h, d.body, now), "wrong secret")
	require.Error(t, docVerify("not-base64!", d.h, d.body, now))

	// Several signatures, one of them right (a rotation): accepted.
	h := d.h.Clone()
	h.Set("webhook-signature", "v1,AAAA "+d.h.Get("webhook-signature"))
	require.NoError(t, docVerify(secret, h, d.body, now))
}
