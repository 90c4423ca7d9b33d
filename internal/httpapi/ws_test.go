package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/notify"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

const wsOrigin = "https://app.example.com"

// wsUser makes a verified account on e and signs it in.
func wsUser(t *testing.T, e *apptest.Env) (email string, tk apptest.Tokens) {
	t.Helper()
	email = "ws-" + strings.ToLower(gatehouse.NewID()) + "@example.com"
	_, err := e.App.Accounts.CreateUser(context.Background(), email, apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	return email, e.Login(email, apptest.StrongPassword)
}

func wsTicket(t *testing.T, e *apptest.Env, access string) string {
	t.Helper()
	r := e.Do("POST", "/ws/ticket", nil, access)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
	require.EqualValues(t, 30, r.JSON["expires_in"])
	return r.Str("ticket")
}

// wsDial opens the socket with a ticket (query) or bearer token and
// optional Origin; it returns the HTTP status when the upgrade is refused.
func wsDial(t *testing.T, e *apptest.Env, ticket, bearer, origin string) (*websocket.Conn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(e.URL, "http") + "/ws"
	if ticket != "" {
		u += "?ticket=" + ticket
	}
	h := http.Header{}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		require.NotNil(t, resp, "dial: %v", err)
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, http.StatusSwitchingProtocols
}

// wsAwait reads until a message of each of types has arrived, in any
// order (each event is its own job), and returns them by type.
func wsAwait(t *testing.T, c *websocket.Conn, types ...string) map[string]notify.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := map[string]notify.Message{}
	for len(got) < len(types) {
		var m notify.Message
		require.NoError(t, wsjson.Read(ctx, c, &m), "waiting for %v, got %v", types, got)
		if slices.Contains(types, m.Type) {
			got[m.Type] = m
		}
	}
	return got
}

// wsAwaitClose reads until the server closes c, and returns the code.
func wsAwaitClose(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestWSAuthentication(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, map[string]string{"GATEHOUSE_CORS_ORIGINS": wsOrigin})
			_, tk := wsUser(t, e)

			require.Equal(t, http.StatusUnauthorized, e.Do("POST", "/ws/ticket", nil, "").Status)

			// A ticket opens one socket, once.
			tick := wsTicket(t, e, tk.Access)
			_, st := wsDial(t, e, tick, "", wsOrigin)
			require.Equal(t, http.StatusSwitchingProtocols, st)
			_, st = wsDial(t, e, tick, "", wsOrigin)
			require.Equal(t, http.StatusUnauthorized, st, "a ticket is single use")

			// Twenty concurrent upgrades with one ticket: exactly one wins.
			tick = wsTicket(t, e, tk.Access)
			var wins, refused atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					switch _, st := wsDial(t, e, tick, "", ""); st {
					case http.StatusSwitchingProtocols:
						wins.Add(1)
					case http.StatusUnauthorized:
						refused.Add(1)
					}
				})
			}
			wg.Wait()
			require.EqualValues(t, 1, wins.Load())
			require.EqualValues(t, 19, refused.Load())

			// A plain GET does not spend the ticket; 30 s later it has expired.
			tick = wsTicket(t, e, tk.Access)
			req, err := http.NewRequest("GET", e.URL+"/ws?ticket="+tick, nil)
			require.NoError(t, err)
			resp, err := e.Server.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			e.Clock.Advance(30 * time.Second)
			_, st = wsDial(t, e, tick, "", "")
			require.Equal(t, http.StatusUnauthorized, st, "expired")

			// Bearer: for clients that can set headers. Origins outside the
			// CORS list are refused whatever the credentials.
			_, st = wsDial(t, e, "", tk.Access, "")
			require.Equal(t, http.StatusSwitchingProtocols, st)
			_, st = wsDial(t, e, "", tk.Access, "https://evil.example.net")
			require.Equal(t, http.StatusForbidden, st)
			_, st = wsDial(t, e, wsTicket(t, e, tk.Access), "", "https://evil.example.net")
			require.Equal(t, http.StatusForbidden, st)
			_, st = wsDial(t, e, "", "", "")
			require.Equal(t, http.StatusUnauthorized, st)
			_, st = wsDial(t, e, "", "not-a-token", "")
			require.Equal(t, http.StatusUnauthorized, st)

			// A ticket of a session that has since ended opens nothing.
			tick = wsTicket(t, e, tk.Access)
			require.Equal(t, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, tk.Access).Status)
			_, st = wsDial(t, e, tick, "", "")
			require.Equal(t, http.StatusUnauthorized, st)
		})
	}
}

// A password change through the API reaches the user's socket; it ends the
// other sessions, whose sockets close with 4001.
func TestWSPasswordChangeNotifies(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, nil)
			email, tk := wsUser(t, e)
			other := e.Login(email, apptest.StrongPassword)
			mine, _ := wsDial(t, e, "", tk.Access, "")
			theirs, _ := wsDial(t, e, wsTicket(t, e, other.Access), "", "")
			require.NotNil(t, mine)
			require.NotNil(t, theirs)

			r := e.Do("POST", "/users/password/change", map[string]any{
				"current_password": apptest.StrongPassword, "new_password": apptest.StrongPassword + "-2"}, tk.Access)
			require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Raw)

			got := wsAwait(t, mine, gatehouse.NotifyPasswordChanged, gatehouse.NotifySessionRevoked)
			m := got[gatehouse.NotifyPasswordChanged]
			require.Equal(t, string(gatehouse.EventUserPasswordChanged), m.Data["event"])
			require.False(t, m.CreatedAt.IsZero())
			require.Equal(t, other.SessionID, got[gatehouse.NotifySessionRevoked].Data["session_id"])
			require.Equal(t, notify.CloseSessionRevoked, wsAwaitClose(t, theirs))
		})
	}
}

// Two instances share PostgreSQL and Redis: a user connected to B hears of
// a change made through A.
func TestWSTwoInstances(t *testing.T) {
	redisURL := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if os.Getenv(sqltest.PostgresURLEnv) == "" || redisURL == "" {
		t.Skip("needs GATEHOUSE_TEST_POSTGRES_URL and GATEHOUSE_TEST_REDIS_URL")
	}
	shared := map[string]string{"GATEHOUSE_DATABASE_URL": sqltest.MigratedPostgresURL(t), "GATEHOUSE_REDIS_URL": redisURL, "GATEHOUSE_REDIS_PREFIX": "test:" + t.Name() + ":"}
	a := apptest.New(t, "postgres", shared)
	b := apptest.New(t, "postgres", shared)
	require.NoError(t, b.App.Worker.Stop(context.Background())) // A's workers fan the events out
	_, tk := wsUser(t, a)
	// The session signed in on A, its socket on B.
	onB, _ := wsDial(t, b, wsTicket(t, b, tk.Access), "", "")
	require.NotNil(t, onB)

	r := a.Do("POST", "/users/password/change", map[string]any{
		"current_password": apptest.StrongPassword, "new_password": apptest.StrongPassword + "-2"}, tk.Access)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Raw)
	wsAwait(t, onB, gatehouse.NotifyPasswordChanged)
}
