package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// benchRing is a one-key ring for benchmarks (RS256, 2048-bit), made once.
type benchRing struct{ priv *rsa.PrivateKey }

var benchKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func (r benchRing) Signer(context.Context) (string, *rsa.PrivateKey, error) {
	return "bench", r.priv, nil
}

func (r benchRing) PublicKey(_ context.Context, kid string) (*rsa.PublicKey, error) {
	if kid != "bench" {
		return nil, token.ErrInvalid
	}
	return &r.priv.PublicKey, nil
}

// benchService is a Service over benchRing that remembers up to
// remembered verified tokens (0: none).
func benchService(b *testing.B, remembered int) *token.Service {
	b.Helper()
	key, err := benchKey()
	if err != nil {
		b.Fatal(err)
	}
	return token.New(benchRing{priv: key}, token.Options{Issuer: "https://auth.example.com", TTL: 15 * time.Minute, VerifiedCacheSize: remembered})
}

func BenchmarkIssue(b *testing.B) {
	s := benchService(b, 0)
	ctx := context.Background()
	auth := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Issue(ctx, "user-1", "sess-1", []string{"pwd"}, auth); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify verifies a token in full each time.
func BenchmarkVerify(b *testing.B) { benchVerify(b, 0) }

// BenchmarkVerifyRemembered is Verify of a token it verified before (the
// server's case: a client sends the same token until it expires).
func BenchmarkVerifyRemembered(b *testing.B) { benchVerify(b, 1000) }

func benchVerify(b *testing.B, remembered int) {
	s := benchService(b, remembered)
	ctx := context.Background()
	raw, _, err := s.Issue(ctx, "user-1", "sess-1", []string{"pwd"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
