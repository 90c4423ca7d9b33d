package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"
)

// A handler slower than Huma's body read timeout must not poison the
// keep-alive connection it ran on: the requests after it on the same
// connection start with a live context. Before the recorder ignored read
// deadlines, the deadline Huma set for reading the body fired under
// net/http's background read and cancelled the connection's context, so
// every later request on it failed at once with "context canceled".
func TestSlowHandlerDoesNotCancelLaterRequestsOnItsConnection(t *testing.T) {
	s := New(Deps{})
	type in struct {
		Body struct {
			Wait string `json:"wait"`
		}
	}
	var cancelled atomic.Int32
	huma.Register(s.api, huma.Operation{
		OperationID: "test-slow", Method: http.MethodPost, Path: "/test/slow",
		BodyReadTimeout: 50 * time.Millisecond,
	}, func(ctx context.Context, i *in) (*struct{}, error) {
		d, err := time.ParseDuration(i.Body.Wait)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity("wait")
		}
		time.Sleep(d)
		if ctx.Err() != nil {
			cancelled.Add(1)
		}
		return nil, ctx.Err()
	})
	srv := httptest.NewUnstartedServer(s.Handler())

	// One connection for every request.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	post := func(wait string) int {
		resp, err := client.Post(srv.URL+BasePath+"/test/slow", "application/json", strings.NewReader(`{"wait":"`+wait+`"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, post("300ms"), "the slow request itself")
	for range 3 {
		require.Equal(t, http.StatusNoContent, post("0s"), "a request after it on the same connection")
	}
	require.Zero(t, cancelled.Load(), "no handler saw a cancelled context")
	require.EqualValues(t, 1, conns.Load(), "every request went over one connection")
}
