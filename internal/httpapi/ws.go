package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// TagNotifications groups the live notification operations.
const TagNotifications = "Notifications"

// Notifier serves live notifications (a *notify.Hub).
type Notifier interface {
	// IssueTicket makes a single-use ticket for the user's session;
	// service_unavailable when the cache fails.
	IssueTicket(ctx context.Context, userID, sessionID string) (string, error)
	// TicketTTL is how long a ticket stays valid.
	TicketTTL() time.Duration
	// RedeemTicket spends a ticket; unauthorized when it is unknown, spent
	// or expired.
	RedeemTicket(ctx context.Context, ticket string) (userID, sessionID string, err error)
	// Serve upgrades the request and runs the socket until it ends.
	Serve(w http.ResponseWriter, r *http.Request, userID, sessionID string)
}

type wsTicketOutput struct {
	Body struct {
		Ticket    string `json:"ticket" doc:"Single use; pass it as GET /ws?ticket=."`
		ExpiresIn int    `json:"expires_in" doc:"Seconds the ticket stays valid."`
	}
}

const wsDescription = "Browsers cannot set an Authorization header on a WebSocket, so they fetch a ticket here " +
	"(single use, valid 30 s) and open `GET " + BasePath + "/ws?ticket=<ticket>`. Other clients may open " +
	"`GET " + BasePath + "/ws` with `Authorization: Bearer <access token>` instead. A request with an `Origin` " +
	"header must come from an origin of GATEHOUSE_CORS_ORIGINS (403 otherwise); the session must be alive (401 otherwise).\n\n" +
	"The server sends JSON text messages `{\"type\", \"data\", \"created_at\"}` of the types " +
	"`security.new_device_login`, `security.password_changed`, `security.mfa_changed`, " +
	"`security.session_revoked` and `security.alert`, as the user's notification_preferences allow " +
	"(an alert type left out of them uses every channel). Clients send nothing; it pings every 30 s.\n\n" +
	"Close codes: 4001 the session the socket was opened with was revoked; 4002 the user opened more than " +
	"5 sockets on one instance and this, the oldest, made room; 1008 the client sent data; 1001 the server is " +
	"shutting down. A client too slow to read (16 messages waiting) or silent to pings is disconnected without a close frame."

var (
	errWSOff          = gatehouse.Errorf(gatehouse.CodeUnavailable, "live notifications are not enabled on this server")
	errWSOrigin       = gatehouse.Errorf(gatehouse.CodePermissionDenied, "this origin may not open the notification socket; list it in GATEHOUSE_CORS_ORIGINS")
	errWSUpgrade      = gatehouse.Errorf(gatehouse.CodeBadRequest, "this endpoint speaks WebSocket only: send Upgrade: websocket")
	errWSSessionEnded = gatehouse.Errorf(gatehouse.CodeUnauthorized, "the session of this ticket has ended")
)

func (s *Server) registerWS() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "create-ws-ticket", Method: http.MethodPost, Path: "/ws/ticket", Tags: []string{TagNotifications},
		Summary:     "Get a ticket to open the notification WebSocket",
		Description: wsDescription,
	}), func(ctx context.Context, _ *struct{}) (*wsTicketOutput, error) {
		if s.notify == nil {
			return nil, Problem(errWSOff)
		}
		p := mustPrincipal(ctx)
		t, err := s.notify.IssueTicket(ctx, p.UserID, p.SessionID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &wsTicketOutput{}
		out.Body.Ticket, out.Body.ExpiresIn = t, int(s.notify.TicketTTL().Seconds())
		return out, nil
	})
	s.mux.HandleFunc("GET "+BasePath+"/ws", s.serveWS)
	s.documentWS()
}

// documentWS describes the socket, a plain route, in the OpenAPI document:
// the ticket is a security scheme of its own, since browsers cannot send
// the bearer token on a WebSocket.
func (s *Server) documentWS() {
	s.api.OpenAPI().Components.SecuritySchemes[SecurityWSTicket] = &huma.SecurityScheme{
		Type: "apiKey", In: "query", Name: "ticket",
		Description: "A single-use ticket from POST " + BasePath + "/ws/ticket (valid 30 s), for browsers, which cannot set Authorization on a WebSocket.",
	}
	s.documentRoute(&huma.Operation{
		OperationID: "open-ws", Method: http.MethodGet, Path: "/ws", Tags: []string{TagNotifications},
		Summary:     "Open the notification WebSocket",
		Description: wsDescription,
		Security:    []map[string][]string{{SecurityBearer: {}}, {SecurityWSTicket: {}}},
		Parameters: []*huma.Param{{Name: "ticket", In: "query", Description: "A ticket from POST /ws/ticket; or send a bearer token instead.",
			Schema: &huma.Schema{Type: huma.TypeString}}},
		Responses: map[string]*huma.Response{"101": {Description: "Switching Protocols: the WebSocket is open (RFC 6455); " +
			"the server sends JSON text messages {\"type\", \"data\", \"created_at\"}."}},
	},
		problemDoc{gatehouse.CodeBadRequest, "the request is not a WebSocket upgrade (no Upgrade: websocket); a ticket stays unspent"},
		problemDoc{gatehouse.CodeUnauthorized, "no ticket or bearer token; the ticket is unknown, spent or expired, the token is not valid, or the session ended"},
		problemDoc{gatehouse.CodePermissionDenied, "the Origin header names an origin not in GATEHOUSE_CORS_ORIGINS"},
		problemDoc{gatehouse.CodeUnavailable, "live notifications are off on this server, or the cache or the database failed"},
	)
}

// serveWS opens the notification socket: the Origin, then the ticket or
// bearer token, are checked before the upgrade, so refusals are ordinary
// problem+json answers.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.notify == nil || s.sessions == nil {
		WriteProblem(w, r, errWSOff)
		return
	}
	// A browser always sends Origin on a WebSocket; a page of another site
	// must not ride on the user's ticket or token (cross-site WebSocket
	// hijacking). Clients that are not browsers send none.
	if o := r.Header.Get("Origin"); o != "" && !s.corsOrigins[strings.ToLower(o)] {
		WriteProblem(w, r, errWSOrigin)
		return
	}
	// Checked before the ticket is spent, so a plain GET cannot burn one.
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		WriteProblem(w, r, errWSUpgrade)
		return
	}
	userID, sessionID, err := s.wsPrincipal(r)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.CodeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		}
		WriteProblem(w, r, err)
		return
	}
	telemetry.SetUserID(r.Context(), userID)
	s.notify.Serve(w, r, userID, sessionID)
}

// wsPrincipal authenticates the upgrade by ticket (query) or bearer token.
func (s *Server) wsPrincipal(r *http.Request) (userID, sessionID string, err error) {
	ctx := r.Context()
	if t := r.URL.Query().Get("ticket"); t != "" {
		if userID, sessionID, err = s.notify.RedeemTicket(ctx, t); err != nil {
			return "", "", err
		}
		// The session may have ended since the ticket was issued.
		live, err := s.sessions.List(ctx, userID)
		if err != nil {
			return "", "", err
		}
		if !slices.ContainsFunc(live, func(x gatehouse.Session) bool { return x.ID == sessionID }) {
			return "", "", errWSSessionEnded
		}
		return userID, sessionID, nil
	}
	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return "", "", errNoToken
	}
	p, err := s.sessions.Authenticate(ctx, raw)
	if err != nil {
		return "", "", err
	}
	return p.UserID, p.SessionID, nil
}
