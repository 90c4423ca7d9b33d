package testclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := testclock.New(t0)
	require.Equal(t, t0, c.Now())
	require.Equal(t, t0, c.Now(), "time passed by itself")
	c.Advance(90 * time.Second)
	require.Equal(t, t0.Add(90*time.Second), c.Now())
	c.Set(t0.Add(-time.Hour))
	require.Equal(t, t0.Add(-time.Hour), c.Now())
	require.True(t, new(testclock.Clock).Now().IsZero())
}

func TestClockIsSafeAcrossGoroutines(t *testing.T) {
	c := testclock.New(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	require.Equal(t, time.Unix(0, 0).Add(800*time.Millisecond), c.Now())
}
