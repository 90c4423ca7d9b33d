package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// SessionStore is what browser sessions read from the database (a
// *sqlstore.DB).
type SessionStore interface {
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (gatehouse.RefreshToken, error)
	GetSession(ctx context.Context, id string) (gatehouse.Session, error)
	TouchSession(ctx context.Context, id string, now time.Time, ip, userAgent string) error
}

// Sessions are browser sessions: a cookie holding an opaque reference to
// a normal Gatehouse session.
//
// The reference is the session's first refresh token: 256 random bits
// that the database keeps only as a SHA-256 hash, bound to that one
// session, ending with it. The pages never rotate it, so it stays valid
// exactly as long as the session is alive: revoking the session (from the
// account page, the API, an admin, a password change or reset) signs the
// browser out at its next request. The cookie is HttpOnly and
// SameSite=Lax; on an https public URL it is Secure and named
// __Host-gh_session (bound to this exact origin), on an http one (local
// development) it is gh_session, since browsers drop Secure cookies there.
type Sessions struct {
	store  SessionStore
	now    func() time.Time
	idle   time.Duration
	name   string
	secure bool
}

// Cookie names of browser sessions.
const (
	SessionCookie         = "__Host-gh_session"
	InsecureSessionCookie = "gh_session"
)

// touchEvery is how often a page view records the session's activity (the
// idle timeout counts from the last record).
const touchEvery = time.Minute

func newSessions(st SessionStore, secure bool, idle time.Duration, now func() time.Time) *Sessions {
	s := &Sessions{store: st, now: now, idle: idle, secure: secure, name: InsecureSessionCookie}
	if secure {
		s.name = SessionCookie
	}
	return s
}

// CookieName is the name of the browser-session cookie.
func (s *Sessions) CookieName() string { return s.name }

// Current answers who is signed in on the browser that sent r: the
// Gatehouse session its cookie refers to, when that session is alive (not
// revoked, expired or idle). It reads the database; it never writes a
// cookie. The OpenID Provider calls it through its own small interface.
func (s *Sessions) Current(r *http.Request) (gatehouse.BrowserSession, bool) {
	sess, ok := s.session(r)
	if !ok {
		return gatehouse.BrowserSession{}, false
	}
	return gatehouse.BrowserSession{UserID: sess.UserID, SessionID: sess.ID, AuthTime: sess.AuthTime,
		AMR: append([]string(nil), sess.AMR...), MFA: sess.MFA}, true
}

// session finds the live session the request's cookie refers to.
func (s *Sessions) session(r *http.Request) (gatehouse.Session, bool) {
	c, err := r.Cookie(s.name)
	if err != nil || c.Value == "" || len(c.Value) > 256 {
		return gatehouse.Session{}, false
	}
	ctx := r.Context()
	rt, err := s.store.GetRefreshTokenByHash(ctx, token.Hash(c.Value))
	if err != nil {
		return gatehouse.Session{}, false
	}
	now := s.now().UTC()
	if rt.UsedAt != nil || !now.Before(rt.ExpiresAt) {
		return gatehouse.Session{}, false
	}
	sess, err := s.store.GetSession(ctx, rt.SessionID)
	if err != nil || sess.UserID != rt.UserID || !sess.Active(now, s.idle) {
		return gatehouse.Session{}, false
	}
	if now.Sub(sess.LastActiveAt) >= touchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, now, "", ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return gatehouse.Session{}, false
		}
	}
	return sess, true
}

// start sets the cookie of a session a sign-in just started.
func (s *Sessions) start(w http.ResponseWriter, res gatehouse.SignInResult) {
	maxAge := int(res.Session.ExpiresAt.Sub(s.now()).Seconds())
	http.SetCookie(w, &http.Cookie{Name: s.name, Value: res.RefreshToken, Path: "/", MaxAge: max(maxAge, 1),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// clear removes the cookie.
func (s *Sessions) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: s.name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode})
}
