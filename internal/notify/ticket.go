package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// A ticket lets a browser, which cannot set an Authorization header on a
// WebSocket, open one: POST /ws/ticket with the bearer token, then
// GET /ws?ticket=. Only its SHA-256 is stored, under ticketPrefix, bound to
// the user and session; Take makes it single use.
const ticketPrefix = "notify:ticket:"

// ticketLen is the encoded length of 32 random bytes.
var ticketLen = base64.RawURLEncoding.EncodedLen(32)

var errBadTicket = gatehouse.Errorf(gatehouse.CodeUnauthorized, "the ticket is unknown, used or expired; get a new one from POST /ws/ticket")

const ticketsDown = "tickets are unavailable; try again shortly or connect with a bearer token"

type ticketValue struct {
	UserID    string    `json:"user_id"`
	SessionID string    `json:"session_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func ticketKey(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return ticketPrefix + hex.EncodeToString(sum[:])
}

// TicketTTL is how long a ticket from IssueTicket stays valid.
func (h *Hub) TicketTTL() time.Duration { return h.opts.TicketTTL }

// IssueTicket makes a 256-bit single-use ticket for the user's session.
// A cache failure is service_unavailable.
func (h *Hub) IssueTicket(ctx context.Context, userID, sessionID string) (string, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails (crypto/rand panics rather)
	ticket := base64.RawURLEncoding.EncodeToString(raw)
	v, err := json.Marshal(ticketValue{UserID: userID, SessionID: sessionID, ExpiresAt: h.opts.Now().Add(h.opts.TicketTTL).UTC()})
	if err != nil {
		return "", err
	}
	if err := h.cache.Set(ctx, ticketKey(ticket), v, h.opts.TicketTTL); err != nil {
		return "", gatehouse.WrapError(gatehouse.CodeUnavailable, err, ticketsDown)
	}
	return ticket, nil
}

// RedeemTicket spends a ticket and returns the user and session it was
// issued to. Of concurrent redemptions of one ticket exactly one succeeds;
// unknown, spent and expired tickets are unauthorized. The expiry is also
// checked against the hub's clock, so it holds whatever the cache's clock.
func (h *Hub) RedeemTicket(ctx context.Context, ticket string) (userID, sessionID string, err error) {
	if len(ticket) != ticketLen {
		return "", "", errBadTicket
	}
	b, err := h.cache.Take(ctx, ticketKey(ticket))
	if errors.Is(err, cache.ErrMiss) {
		return "", "", errBadTicket
	}
	if err != nil {
		return "", "", gatehouse.WrapError(gatehouse.CodeUnavailable, err, ticketsDown)
	}
	var v ticketValue
	if err := json.Unmarshal(b, &v); err != nil || !h.opts.Now().Before(v.ExpiresAt) {
		return "", "", errBadTicket
	}
	return v.UserID, v.SessionID, nil
}
