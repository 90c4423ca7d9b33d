package ratelimit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

// Property 70: the limiter refuses what exceeds the limit and only that.
// GCRA's bound: between any two admitted requests i ≤ j at most
// Count + (t_j - t_i)/(Window/Count) are admitted, so never more than Count
// within Window/Count, and the long-run rate is Count per Window. A refused
// request passes exactly RetryAfter later, and an admitted one's Remaining
// is how many more would pass at the same instant.
func TestProperty70_RateLimitRejection(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := ratelimit.Limit{
			Count:  rapid.IntRange(1, 20).Draw(t, "count"),
			Window: rapid.SampledFrom([]time.Duration{time.Second, time.Minute, time.Hour}).Draw(t, "window"),
		}
		interval := lim.Window / time.Duration(lim.Count)
		c := testclock.New(time.Unix(1_700_000_000, 0))
		m := ratelimit.NewMemory(ratelimit.WithClock(c.Now))
		var admitted []time.Time
		allow := func() ratelimit.Result {
			res, err := m.Allow(t.Context(), "k", lim)
			require.NoError(t, err)
			if res.Allowed {
				admitted = append(admitted, c.Now())
			}
			return res
		}

		for range rapid.IntRange(1, 80).Draw(t, "steps") {
			c.Advance(time.Duration(rapid.Int64Range(0, int64(2*interval)).Draw(t, "gap")))
			res := allow()
			require.Equal(t, lim, res.Limit)
			if !res.Allowed {
				require.Positive(t, res.RetryAfter)
				require.Zero(t, res.Remaining)
				if rapid.Bool().Draw(t, "retry") {
					c.Advance(res.RetryAfter - 1)
					require.False(t, allow().Allowed, "passed before RetryAfter")
					c.Advance(1)
					require.True(t, allow().Allowed, "refused at RetryAfter")
				}
				continue
			}
			require.Zero(t, res.RetryAfter)
			require.LessOrEqual(t, res.ResetAfter, lim.Window)
			if rapid.Bool().Draw(t, "drain") {
				for i := range res.Remaining {
					require.True(t, allow().Allowed, "remaining %d, refused after %d", res.Remaining, i)
				}
				require.False(t, allow().Allowed, "passed beyond remaining %d", res.Remaining)
			}
		}
		for i := range admitted {
			for j := i; j < len(admitted); j++ {
				n := time.Duration(j - i + 1)
				require.LessOrEqual(t, n*interval, time.Duration(lim.Count)*interval+admitted[j].Sub(admitted[i]),
					"%d admitted in %s under %d per %s", n, admitted[j].Sub(admitted[i]), lim.Count, lim.Window)
			}
		}
	})
}

func TestMemoryStaysBounded(t *testing.T) {
	c := testclock.New(time.Unix(1_700_000_000, 0))
	m := ratelimit.NewMemory(ratelimit.WithClock(c.Now), ratelimit.WithMaxKeys(100))
	lim := ratelimit.Limit{Count: 1, Window: time.Hour}
	for i := range 1000 {
		_, err := m.Allow(t.Context(), strconv.Itoa(i), lim)
		require.NoError(t, err)
		require.LessOrEqual(t, m.Len(), 100)
	}

	// Keys back to their full limit hold nothing and are swept.
	c.Advance(lim.Window)
	_, err := m.Allow(t.Context(), "fresh", lim)
	require.NoError(t, err)
	require.Equal(t, 1, m.Len())
}
