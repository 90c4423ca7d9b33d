package password

import (
	"context"
	"testing"
)

func BenchmarkHashDefault(b *testing.B) {
	h := NewHasher(DefaultParams)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, "correct horse battery staple", phc); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkVerifyParallel shows throughput under a login flood with the
// default concurrency limit (GOMAXPROCS).
func BenchmarkVerifyParallel(b *testing.B) {
	h := NewHasher(DefaultParams)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(ctx, "correct horse battery staple", phc); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
}

func BenchmarkPolicyCheck(b *testing.B) {
	p := DefaultPolicy()
	for b.Loop() {
		p.Check("correct horse battery staple", "john.smith@example.com", "John Smith")
	}
}
