package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

// head sends a HEAD to an absolute URL with extra headers and returns the
// answer, which has no body.
func head(t *testing.T, client *http.Client, raw string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, raw, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Empty(t, body)
	return resp
}

// Issue #16: HEAD of the magic-link verification answered 200 and spent
// the link. No HEAD spends or starts anything: on the GET routes that
// change state it answers 405 with Allow: GET, and what it did not spend
// still works; the pages the emailed links open, and reads, answer HEAD.
func TestHEADChangesNothing(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e := newOAuthEnv(t, engine)
			refused := func(resp *http.Response, what string) {
				t.Helper()
				require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, what)
				require.Equal(t, http.MethodGet, resp.Header.Get("Allow"), what)
				require.Empty(t, resp.Header.Values("Set-Cookie"), what)
			}

			// The magic link: HEAD of the page and of the API spend nothing.
			email := "head-" + strings.ToLower(engine) + "@example.com"
			e.Register(email, apptest.StrongPassword)
			require.Equal(t, http.StatusAccepted, e.Do("POST", "/auth/magic-link", map[string]any{"email": email}, "").Status)
			var tok string
			for tok == "" { // past the verification email
				tok = apptest.TokenFromLink(e.Mail.WaitFor(t, email, 10*time.Second).Text, "http://gatehouse.test/magic-link")
			}
			q := "?token=" + url.QueryEscape(tok)
			page := head(t, e.Server.Client(), e.Server.URL+"/magic-link"+q, nil)
			require.Equal(t, http.StatusOK, page.StatusCode)
			refused(head(t, e.Server.Client(), e.URL+"/auth/magic-link/verify"+q, nil), "magic-link verify")
			r := e.Do("GET", "/auth/magic-link/verify"+q, nil, "")
			require.Equal(t, http.StatusOK, r.Status, "the link still works: %s", r.Raw)
			require.NotEmpty(t, r.Str("access_token"))
			access := r.Str("access_token")

			// Social login: HEAD starts no flow and spends no state.
			refused(head(t, e.browser, e.URL+"/oauth/google/authorize", nil), "oauth authorize")
			callback := e.start(t, "google", "", "")
			refused(head(t, e.browser, strings.Replace(callback, "http://gatehouse.test", e.Server.URL, 1), nil), "oauth callback")
			r = e.get(t, callback, "")
			require.Equal(t, http.StatusOK, r.Status, "the flow still completes: %s", r.Raw)
			require.NotEmpty(t, r.Str("access_token"))

			// The notification socket: HEAD spends no ticket.
			ticket := wsTicket(t, e.Env, access)
			refused(head(t, e.Server.Client(), e.URL+"/ws?ticket="+ticket, map[string]string{
				"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
			}), "ws")
			_, status := wsDial(t, e.Env, ticket, "", "")
			require.Equal(t, http.StatusSwitchingProtocols, status, "the ticket still opens the socket")

			// Reads answer HEAD as GET, without a body.
			for _, path := range []string{"/health/live", "/auth/me", "/openapi.json"} {
				resp := head(t, e.Server.Client(), e.URL+path, map[string]string{"Authorization": "Bearer " + access})
				require.Equal(t, http.StatusOK, resp.StatusCode, path)
			}
		})
	}
}

// Every GET route is either known to change state (and refuses HEAD) or
// reviewed as a read; a new GET route fails here until it is classified.
func TestEveryGETRouteIsClassified(t *testing.T) {
	reads := []string{ // operation ids of GETs that change nothing
		"get-jwks", "admin-list-audit-logs", "admin-list-roles", "admin-list-users", "admin-get-user",
		"get-me", "mfa-backup-codes-remaining", "webauthn-list-credentials", "list-devices",
		"get-health", "get-health-live", "get-health-ready", "get-metrics", "list-oauth-accounts",
		"list-sessions", "get-profile", "list-webhooks", "list-webhook-event-types", "get-webhook",
		"list-webhook-deliveries", "get-openapi", "get-docs", "admin-list-clients", "admin-get-client",
		"list-consents",
	}
	s := httpapi.New(httpapi.Deps{})
	effects := httpapi.SideEffectGETs()
	for path, item := range s.API().OpenAPI().Paths {
		if item.Get == nil {
			continue
		}
		pattern := "GET " + httpapi.BasePath + path
		if slices.Contains(effects, pattern) {
			require.Contains(t, item.Get.Description, "HEAD is not served", path)
			require.NotContains(t, reads, item.Get.OperationID, path)
			continue
		}
		require.Contains(t, reads, item.Get.OperationID, "GET %s (%s) is not classified: does it change state?", path, item.Get.OperationID)
	}
	// Each listed route exists on the mux.
	for _, pattern := range effects {
		method, path, _ := strings.Cut(pattern, " ")
		req, err := http.NewRequest(method, strings.ReplaceAll(path, "{provider}", "google"), nil)
		require.NoError(t, err)
		_, got := s.Mux().Handler(req)
		require.Equal(t, pattern, got)
	}
}
