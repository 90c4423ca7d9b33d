// Package session runs signed-in sessions: it starts them with their first
// refresh token, rotates refresh tokens within a family (one family per
// session) and detects reuse, lists and revokes sessions, and answers the
// per-request question "is this access token's session still alive?"
// through the cache, with the database as the truth.
package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Store is what sessions need from the database.
type Store interface {
	store.Sessions
	store.RefreshTokens
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Options tune sessions.
type Options struct {
	// Lifetime is the absolute life of a session and its refresh family.
	Lifetime time.Duration
	// IdleTimeout ends a session unused (no request, no refresh) this long;
	// zero disables it.
	IdleTimeout time.Duration
	// Rescorer recomputes the trust score at every refresh (nil keeps it).
	Rescorer Rescorer
	// LocalSize bounds the sessions vouched for in memory (see
	// Authenticate): cache.DefaultLocalSize when 0, none when negative.
	LocalSize int
	// Metrics counts refreshes in gatehouse_refresh_total, and the
	// in-process cache's lookups (nil: none).
	Metrics *telemetry.Metrics
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service manages sessions.
type Service struct {
	store   Store
	cache   cache.Cache
	tokens  *token.Service
	events  store.Emitter
	opts    Options
	rescore Rescorer

	// cacheGen is the cache's Generation last seen, and distrustUntil
	// (unix nanoseconds) the end of the window after a cache outage in
	// which "alive" marks are not believed (see Authenticate).
	cacheGen      atomic.Uint64
	distrustUntil atomic.Int64

	// alive vouches in memory for sessions the shared cache or the
	// database said are alive, so most requests need no round trip.
	alive *cache.Local[aliveMark]
}

// aliveMark is what the in-process cache knows of a live session.
type aliveMark struct {
	userID string
	trust  int
}

// Rescorer recomputes a session's trust score at a refresh (a
// *risk.Guard), inside the refresh's transaction.
type Rescorer interface {
	RescoreTx(ctx context.Context, tx store.Tx, sess gatehouse.Session, meta gatehouse.ClientInfo) (int, error)
}

// Cache keys. A revoked session's id stays on the deny list as long as any
// access token naming it could still be valid; a live session is vouched
// for briefly so most requests need no database read.
const (
	revokedPrefix = "sess:revoked:"
	alivePrefix   = "sess:alive:"
	aliveTTL      = time.Minute
	// localAliveTTL bounds how long this instance believes a session alive
	// without asking the shared cache. Revocations reach it at once through
	// pub/sub; the TTL only bounds the damage of a lost message.
	localAliveTTL = 15 * time.Second
	// LocalCacheName names the in-process session cache (its metrics and
	// invalidations).
	LocalCacheName = "sessions"
)

// New makes a Service.
func New(st Store, c cache.Cache, tokens *token.Service, ev store.Emitter, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{store: st, cache: c, tokens: tokens, events: ev, rescore: o.Rescorer, opts: o,
		alive: cache.NewLocal[aliveMark](c, LocalCacheName, cache.LocalOptions{
			Size: o.LocalSize, TTL: localAliveTTL, Now: o.Now, Logger: o.Logger, Stats: o.Metrics.Cache(LocalCacheName),
		})}
}

// Listen subscribes the in-process session cache to invalidations from
// every instance (revocations); until then nothing is kept in memory, and
// every request asks the shared cache. StopListening stops it.
func (s *Service) Listen(ctx context.Context) error { return s.alive.Start(ctx) }

// StopListening stops listening for invalidations.
func (s *Service) StopListening() error { return s.alive.Close() }

// Start creates a session and its first refresh token inside tx.
func (s *Service) Start(ctx context.Context, tx store.Tx, userID string, meta gatehouse.ClientInfo, amr []string, mfa bool) (gatehouse.Session, string, error) {
	return s.StartAt(ctx, tx, userID, meta, amr, mfa, time.Time{})
}

// StartAt is Start for a user who authenticated at authTime, earlier
// than now (an app's session from a browser sign-in: its tokens keep the
// time of that sign-in). A zero authTime is now.
func (s *Service) StartAt(ctx context.Context, tx store.Tx, userID string, meta gatehouse.ClientInfo, amr []string, mfa bool,
	authTime time.Time) (gatehouse.Session, string, error) {
	now := s.opts.Now().UTC()
	if authTime.IsZero() || authTime.After(now) {
		authTime = now
	}
	sess := gatehouse.Session{
		ID: gatehouse.NewID(), UserID: userID, CreatedAt: now, LastActiveAt: now,
		ExpiresAt: now.Add(s.opts.Lifetime), IPAddress: meta.IP, UserAgent: truncate(meta.UserAgent, 512),
		DeviceID: truncate(meta.DeviceID, 512), DeviceRef: meta.DeviceRef, AMR: amr, MFA: mfa, AuthTime: authTime.UTC(), TrustScore: 50,
		Location: truncate(meta.Location, 200),
	}
	if meta.TrustScore > 0 {
		sess.TrustScore = min(meta.TrustScore, 100)
	}
	if err := tx.CreateSession(ctx, sess); err != nil {
		return gatehouse.Session{}, "", fmt.Errorf("start session: %w", err)
	}
	refresh, err := s.newRefresh(ctx, tx, sess, now)
	if err != nil {
		return gatehouse.Session{}, "", err
	}
	return sess, refresh, nil
}

func (s *Service) newRefresh(ctx context.Context, tx store.Tx, sess gatehouse.Session, now time.Time) (string, error) {
	secret, hash := token.NewOpaque()
	err := tx.CreateRefreshToken(ctx, gatehouse.RefreshToken{
		ID: gatehouse.NewID(), SessionID: sess.ID, UserID: sess.UserID, Hash: hash,
		CreatedAt: now, ExpiresAt: sess.ExpiresAt,
	})
	if err != nil {
		return "", fmt.Errorf("issue refresh token: %w", err)
	}
	return secret, nil
}

// AccessToken signs an access token for the session.
func (s *Service) AccessToken(ctx context.Context, sess gatehouse.Session) (string, token.Claims, error) {
	return s.tokens.Issue(ctx, sess.UserID, sess.ID, sess.AMR, sess.AuthTime)
}

// Refreshed is the outcome of a refresh.
type Refreshed struct {
	Session      gatehouse.Session
	RefreshToken string
}

var (
	errInvalidRefresh = gatehouse.Errorf(gatehouse.CodeInvalidRefreshToken, "the refresh token is unknown, expired or revoked")
	errReused         = gatehouse.Errorf(gatehouse.CodeRefreshTokenReused, "this refresh token was already used; the session has been ended")
)

// Refresh rotates a refresh token: the presented one is marked used and a
// new one is issued in the same family, atomically. Presenting a token that
// was already used ends the whole family (its session): a stolen token is
// then useless to the thief and to the victim alike, who must sign in again.
func (s *Service) Refresh(ctx context.Context, refresh string, meta gatehouse.ClientInfo) (Refreshed, error) {
	return s.RefreshFor(ctx, "", refresh, meta)
}

// RefreshFor is Refresh for the OpenID Provider client clientID ("" for
// Gatehouse's own API): a session granted to a client refreshes only for
// that client, and one that was not only through the API. A token of
// another client's family is refused as unknown before anything is
// spent, so presenting it elsewhere neither rotates nor ends the family.
func (s *Service) RefreshFor(ctx context.Context, clientID, refresh string, meta gatehouse.ClientInfo) (Refreshed, error) {
	out, err := s.refresh(ctx, clientID, refresh, meta)
	switch code := gatehouse.ErrorCode(err); {
	case err == nil:
		s.opts.Metrics.Refresh("success")
	case code == gatehouse.CodeRefreshTokenReused:
		s.opts.Metrics.Refresh("reused")
	case code == gatehouse.CodeInvalidRefreshToken:
		s.opts.Metrics.Refresh("invalid")
	}
	return out, err
}

func (s *Service) refresh(ctx context.Context, clientID, refresh string, meta gatehouse.ClientInfo) (Refreshed, error) {
	if refresh == "" || len(refresh) > 256 {
		return Refreshed{}, errInvalidRefresh
	}
	var out Refreshed
	reusedSession := ""
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		now := s.opts.Now().UTC()
		// Spend the token first, in one statement: of concurrent refreshes
		// with it exactly one gets it. Every refusal below returns an
		// error, which rolls the spending back, so a token refused for its
		// session or its client stays as it was.
		hash := token.Hash(refresh)
		rt, err := tx.ConsumeRefreshToken(ctx, hash, now)
		won := err == nil
		if errors.Is(err, store.ErrNotFound) {
			// Unknown, or used already: a reuse, unless it is refused
			// below for what it would be refused anyway.
			rt, err = tx.GetRefreshTokenByHash(ctx, hash)
		}
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidRefresh
		}
		if err != nil {
			return err
		}
		// The session and the client it was granted to ("" for the API's
		// own), in one statement.
		sess, grantedTo, err := tx.GetSessionClient(ctx, rt.SessionID)
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidRefresh
		}
		if err != nil {
			return err
		}
		if !sess.Active(now, s.opts.IdleTimeout) || !now.Before(rt.ExpiresAt) || grantedTo != clientID {
			return errInvalidRefresh
		}
		if !won {
			reusedSession = sess.ID
			return s.revokeTx(ctx, tx, sess.UserID, sess.ID, "refresh_token_reused", now)
		}
		ua := truncate(meta.UserAgent, 512)
		if s.rescore != nil {
			// sess still has the address of the previous request.
			score, err := s.rescore.RescoreTx(ctx, tx, sess, meta)
			if err != nil {
				return err
			}
			if err := tx.TouchSessionTrust(ctx, sess.ID, now, meta.IP, ua, score); err != nil {
				return err
			}
			sess.TrustScore = score
		} else if err := tx.TouchSession(ctx, sess.ID, now, meta.IP, ua); err != nil {
			return err
		}
		sess.LastActiveAt = now
		if meta.IP != "" {
			sess.IPAddress = meta.IP
		}
		next, err := s.newRefresh(ctx, tx, sess, now)
		if err != nil {
			return err
		}
		out = Refreshed{Session: sess, RefreshToken: next}
		return nil
	})
	if err != nil {
		return Refreshed{}, err
	}
	if reusedSession != "" {
		s.forget(ctx, reusedSession)
		return Refreshed{}, errReused
	}
	if s.rescore != nil {
		// The "alive" marks carry the old score; the next request reads
		// the new one from the database.
		if err := s.cache.Delete(ctx, alivePrefix+out.Session.ID); err != nil {
			s.opts.Logger.WarnContext(ctx, "session cache delete failed", "err", err)
		}
		s.alive.Invalidate(ctx, out.Session.ID)
	}
	return out, nil
}

// List returns the user's live sessions, most recently active first.
func (s *Service) List(ctx context.Context, userID string) ([]gatehouse.Session, error) {
	all, err := s.store.ListSessions(ctx, userID, s.opts.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	live := all[:0]
	for _, sess := range all {
		if sess.Active(s.opts.Now(), s.opts.IdleTimeout) {
			live = append(live, sess)
		}
	}
	return live, nil
}

// Revoke ends one of the user's sessions. A session of somebody else is
// not_found, so ids cannot be probed.
func (s *Service) Revoke(ctx context.Context, userID, sessionID, reason string) error {
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		sess, err := tx.GetSession(ctx, sessionID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.UserID != userID || sess.RevokedAt != nil)) {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no such session")
		}
		if err != nil {
			return err
		}
		return s.revokeTx(ctx, tx, userID, sessionID, reason, s.opts.Now().UTC())
	})
	if err != nil {
		return err
	}
	s.forget(ctx, sessionID)
	return nil
}

// RevokeAllTx revokes every session of the user but except (may be empty)
// inside tx, recording why. After tx commits the caller must pass the ids
// to Forget so access tokens stop at once.
func (s *Service) RevokeAllTx(ctx context.Context, tx store.Tx, userID, except, reason string) ([]string, error) {
	now := s.opts.Now().UTC()
	ids, err := tx.RevokeUserSessions(ctx, userID, except, now)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	for _, id := range ids {
		if err := s.emitRevoked(ctx, tx, userID, id, reason, now); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// RevokeDeviceTx revokes every session from the device inside tx,
// recording why. After tx commits the caller must pass the ids to Forget.
func (s *Service) RevokeDeviceTx(ctx context.Context, tx store.Tx, userID, deviceID, reason string) ([]string, error) {
	now := s.opts.Now().UTC()
	ids, err := tx.RevokeDeviceSessions(ctx, deviceID, now)
	if err != nil {
		return nil, fmt.Errorf("revoke device sessions: %w", err)
	}
	for _, id := range ids {
		if err := s.emitRevoked(ctx, tx, userID, id, reason, now); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// RevokeOthers ends every session of the user except the current one and
// reports how many ended.
func (s *Service) RevokeOthers(ctx context.Context, userID, current string) (int, error) {
	var ids []string
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		ids, err = s.RevokeAllTx(ctx, tx, userID, current, "revoked_by_user")
		return err
	})
	if err != nil {
		return 0, err
	}
	s.Forget(ctx, ids...)
	return len(ids), nil
}

// RevokeIDsTx revokes the user's sessions with these ids inside tx,
// recording why (a deleted OAuth client, a revoked consent). After tx
// commits the caller must pass the ids to Forget.
func (s *Service) RevokeIDsTx(ctx context.Context, tx store.Tx, userID string, ids []string, reason string) error {
	now := s.opts.Now().UTC()
	for _, id := range ids {
		if err := s.revokeTx(ctx, tx, userID, id, reason, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) revokeTx(ctx context.Context, tx store.Tx, userID, sessionID, reason string, now time.Time) error {
	did, err := tx.RevokeSession(ctx, sessionID, now)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if !did {
		return nil
	}
	return s.emitRevoked(ctx, tx, userID, sessionID, reason, now)
}

func (s *Service) emitRevoked(ctx context.Context, tx store.Tx, userID, sessionID, reason string, now time.Time) error {
	_, err := s.events.Emit(ctx, tx, gatehouse.Event{
		Type: gatehouse.EventSessionRevoked, UserID: userID, CreatedAt: now,
		Data: map[string]any{"session_id": sessionID, "reason": reason},
	})
	return err
}

// Forget puts revoked sessions on the cache's deny list so their access
// tokens stop at once on every instance. A cache failure is logged: the
// short life of the "alive" mark bounds how long a token could outlive it.
func (s *Service) Forget(ctx context.Context, ids ...string) {
	for _, id := range ids {
		s.forget(ctx, id)
	}
}

func (s *Service) forget(ctx context.Context, id string) {
	if id == "" {
		return
	}
	ttl := s.tokens.TTL() + time.Minute
	if err := s.cache.Set(ctx, revokedPrefix+id, []byte{1}, ttl); err != nil {
		s.opts.Logger.WarnContext(ctx, "session deny list: cache write failed", "session_id", id, "err", err)
	}
	if err := s.cache.Delete(ctx, alivePrefix+id); err != nil {
		s.opts.Logger.WarnContext(ctx, "session deny list: cache delete failed", "session_id", id, "err", err)
	}
	// Every instance drops its in-process mark on hearing this.
	s.alive.Invalidate(ctx, id)
}

// trustAliveMarks reports whether an "alive" mark read from the cache may
// be believed. Not while the cache is down, nor for aliveTTL after it
// comes back: a session revoked during the outage could not be put on the
// deny list nor have its mark deleted, and a mark written before the
// outage may have survived it (Redis frozen or cut off, not restarted).
// Once every mark from before the outage has expired, marks are again
// only written after the database said the session is alive.
func (s *Service) trustAliveMarks() bool {
	gen, live := s.cache.Generation()
	if !live {
		return false
	}
	now := s.opts.Now()
	if old := s.cacheGen.Load(); old != gen && s.cacheGen.CompareAndSwap(old, gen) {
		s.distrustUntil.Store(now.Add(aliveTTL).UnixNano())
	}
	return now.UnixNano() >= s.distrustUntil.Load()
}

var errUnauthorized = gatehouse.Errorf(gatehouse.CodeUnauthorized, "the access token is missing, malformed, expired or revoked")

const keysDown = "access tokens cannot be checked right now; try again"

// Authenticate verifies an access token and that its session is alive.
// Most requests are answered from memory: a session this instance saw
// alive in the last localAliveTTL, and which no instance has revoked since
// (revocations are published to every instance), needs no round trip.
// Otherwise the shared cache answers (deny list, then a short-lived
// "alive" mark); on a miss or a cache failure the database decides, never
// a guess.
// A token that could not be checked (the signing keys could not be read)
// is service_unavailable, not unauthorized: the client keeps its token.
func (s *Service) Authenticate(ctx context.Context, raw string) (gatehouse.Principal, error) {
	claims, err := s.tokens.Verify(ctx, raw)
	if errors.Is(err, token.ErrInvalid) {
		return gatehouse.Principal{}, gatehouse.WrapError(gatehouse.CodeUnauthorized, err, errUnauthorized.Message)
	}
	if err != nil {
		return gatehouse.Principal{}, gatehouse.WrapError(gatehouse.CodeUnavailable, err, keysDown)
	}
	if !s.tokens.FirstParty(claims) {
		// A token the OpenID Provider issued to an app is for that app's
		// resource servers (and /oauth2/userinfo), not for this API,
		// which would otherwise let a third-party app act as the user.
		return gatehouse.Principal{}, errUnauthorized
	}
	p := gatehouse.Principal{UserID: claims.Subject, SessionID: claims.SessionID, AMR: claims.AMR,
		AuthTime: claims.AuthTime, TokenID: claims.ID, ExpiresAt: claims.ExpiresAt}

	if !s.trustAliveMarks() {
		p, _, err := s.authenticateDB(ctx, p)
		return p, err
	}
	if m, ok := s.alive.Get(p.SessionID); ok && m.userID == p.UserID {
		p.TrustScore = m.trust
		return p, nil
	}
	version := s.alive.Version()
	if _, err := s.cache.Get(ctx, revokedPrefix+p.SessionID); err == nil {
		return gatehouse.Principal{}, errUnauthorized
	}
	if v, err := s.cache.Get(ctx, alivePrefix+p.SessionID); err == nil {
		var ends time.Time
		if len(v) >= 2 {
			p.TrustScore = int(v[1])
		}
		if len(v) == 10 {
			ends = time.Unix(int64(binary.BigEndian.Uint64(v[2:])), 0)
		}
		s.remember(version, p, ends)
		return p, nil
	}
	p, ends, err := s.authenticateDB(ctx, p)
	if err == nil {
		s.remember(version, p, ends)
	}
	return p, err
}

// remember vouches for p's session in memory for localAliveTTL, less when
// it could end sooner: its access token expires, the session reaches its
// end (sessionEnds, zero when unknown), or it could go idle (the database
// was last told of activity when the shared mark was written, up to
// aliveTTL ago).
func (s *Service) remember(version uint64, p gatehouse.Principal, sessionEnds time.Time) {
	now := s.opts.Now()
	ttl := min(localAliveTTL, p.ExpiresAt.Sub(now))
	if !sessionEnds.IsZero() {
		ttl = min(ttl, sessionEnds.Sub(now))
	} else {
		// A mark written before marks said when the session ends.
		ttl = min(ttl, time.Second)
	}
	if idle := s.opts.IdleTimeout; idle > 0 {
		ttl = min(ttl, (idle-aliveTTL)/2)
	}
	if ttl > 0 {
		s.alive.Add(version, p.SessionID, aliveMark{userID: p.UserID, trust: p.TrustScore}, ttl)
	}
}

// authenticateDB asks the database whether p's session is alive, records
// the activity (at most once per aliveTTL per session, since the shared
// "alive" mark it writes answers until then) and marks it alive. It also
// returns when the session ends.
func (s *Service) authenticateDB(ctx context.Context, p gatehouse.Principal) (gatehouse.Principal, time.Time, error) {
	sess, err := s.store.GetSession(ctx, p.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return gatehouse.Principal{}, time.Time{}, errUnauthorized
	}
	if err != nil {
		return gatehouse.Principal{}, time.Time{}, fmt.Errorf("authenticate: %w", err)
	}
	now := s.opts.Now().UTC()
	if sess.UserID != p.UserID || !sess.Active(now, s.opts.IdleTimeout) {
		if sess.RevokedAt != nil {
			s.forget(ctx, sess.ID)
		}
		return gatehouse.Principal{}, time.Time{}, errUnauthorized
	}
	// Activity is recorded at most once per aliveTTL per session: the
	// database is written only when the "alive" mark had lapsed.
	if err := s.store.TouchSession(ctx, sess.ID, now, "", ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		return gatehouse.Principal{}, time.Time{}, fmt.Errorf("authenticate: %w", err)
	}
	ttl := min(aliveTTL, sess.ExpiresAt.Sub(now))
	p.TrustScore = min(max(sess.TrustScore, 0), 100)
	// The mark: 1, the trust score, and when the session ends (unix
	// seconds, big-endian), so instances that read it know how long they
	// may vouch for the session in memory.
	mark := binary.BigEndian.AppendUint64([]byte{1, byte(p.TrustScore)}, uint64(sess.ExpiresAt.Unix()))
	if err := s.cache.Set(ctx, alivePrefix+sess.ID, mark, ttl); err != nil {
		s.opts.Logger.WarnContext(ctx, "session cache write failed", "err", err)
	}
	return p, sess.ExpiresAt, nil
}

// Get returns one session of the user (not_found for others').
func (s *Service) Get(ctx context.Context, userID, sessionID string) (gatehouse.Session, error) {
	sess, err := s.store.GetSession(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.UserID != userID) {
		return gatehouse.Session{}, gatehouse.Errorf(gatehouse.CodeNotFound, "no such session")
	}
	return sess, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
