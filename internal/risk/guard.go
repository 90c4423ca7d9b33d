package risk

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Store is what the guard needs outside a sign-in's transaction.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// PurposeConfirmSignIn is the one-time token of an emailed sign-in
// confirmation (the step-up of a high-risk sign-in without MFA).
const PurposeConfirmSignIn gatehouse.OneTimePurpose = "confirm_sign_in"

// MethodEmailConfirmation is the challenge method of that step-up.
const MethodEmailConfirmation = "email_confirmation"

// ConfirmTTL is how long an emailed confirmation link works.
const ConfirmTTL = 15 * time.Minute

// GuardOptions tune the guard.
type GuardOptions struct {
	// ConfirmURL is where the confirmation link points; the token is
	// appended as ?token=.
	ConfirmURL  string
	ServiceName string
	// DenyBlocklisted refuses every sign-in from an address on the
	// blocklist (GATEHOUSE_IP_BLOCKLIST_ACTION=deny) instead of stepping
	// it up.
	DenyBlocklisted bool
	Now             func() time.Time
}

// Guard is the risk side of signing in, for the sign-in flow
// (internal/signin) to call: it scores a sign-in, keeps the login profile,
// raises alerts and holds emailed confirmations; it recomputes trust at
// refreshes (the session service's Rescorer).
type Guard struct {
	Engine *Engine
	store  Store
	events store.Emitter
	mail   store.Mailer
	cache  cache.Cache
	opts   GuardOptions
}

// NewGuard makes a Guard.
func NewGuard(e *Engine, st Store, ev store.Emitter, m store.Mailer, c cache.Cache, o GuardOptions) *Guard {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Guard{Engine: e, store: st, events: ev, mail: m, cache: c, opts: o}
}

func (g *Guard) now() time.Time { return g.opts.Now().UTC() }

// Assess scores a sign-in of u from client inside tx (one device and one
// profile read). client.Fingerprint names the device (the caller fixes it,
// see internal/device); a device the user does not have counts as new. The
// profile read is returned for RecordSignIn, in the same transaction.
func (g *Guard) Assess(ctx context.Context, tx store.Tx, u gatehouse.User, client gatehouse.ClientInfo) (gatehouse.RiskAssessment, *Profile, error) {
	in := Input{UserID: u.ID, IP: client.IP, FirstSignIn: u.LastLoginAt == nil}
	d, err := tx.GetDeviceByFingerprint(ctx, u.ID, client.Fingerprint)
	switch {
	case err == nil:
		in.Device = &d
	case !errors.Is(err, store.ErrNotFound):
		return gatehouse.RiskAssessment{}, nil, err
	}
	if in.Profile, err = g.profile(ctx, tx, u.ID); err != nil {
		return gatehouse.RiskAssessment{}, nil, err
	}
	return g.Engine.Assess(ctx, in), &in.Profile, nil
}

func (g *Guard) profile(ctx context.Context, tx store.Tx, userID string) (Profile, error) {
	raw, err := tx.GetLoginProfile(ctx, userID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Profile{}, err
	}
	return DecodeProfile(raw), nil
}

// RecordSignIn records a completed sign-in of userID inside tx, the one
// Assess scored it in: where it came from goes into the login profile p
// (what Assess returned), and the account's failure count starts over.
func (g *Guard) RecordSignIn(ctx context.Context, tx store.Tx, userID string, a gatehouse.RiskAssessment, p *Profile) error {
	now := g.now()
	p.Record(now, a.Location, a.Located)
	if err := tx.PutLoginProfile(ctx, userID, p.Encode(), now); err != nil {
		return err
	}
	g.Engine.ResetAccountFailures(ctx, userID)
	return nil
}

// Alerting reports whether an assessment raises a security.alert: a score
// at or above the high threshold, or one of the factors users are told of
// on their own (impossible travel, a new country, a run of failed
// sign-ins before this one).
func (g *Guard) Alerting(a gatehouse.RiskAssessment) bool {
	return a.Score >= g.Engine.High() || a.Has(FactorImpossibleTravel) || a.Has(FactorNewCountry) || a.Has(FactorFailedAccount)
}

// AlertTx emits security.alert for an assessed sign-in or refresh of u
// (what: "sign_in" or "refresh"; stepUp: how the sign-in must be
// confirmed, or "") and emails the user unless their preferences turn
// security-alert emails off.
func (g *Guard) AlertTx(ctx context.Context, tx store.Tx, u gatehouse.User, meta gatehouse.ClientInfo, a gatehouse.RiskAssessment, what, stepUp string) error {
	now := g.now()
	data := map[string]any{
		"reason": "risky_" + what, "risk_score": a.Score, "risk_level": a.Level, "risk_factors": a.Data(),
		"ip_address": meta.IP, "user_agent": meta.UserAgent,
	}
	if a.Located {
		data["location"] = a.Location.String()
	}
	if stepUp != "" {
		data["step_up"] = stepUp
	}
	if _, err := g.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventSecurityAlert, UserID: u.ID, CreatedAt: now, Data: data}); err != nil {
		return err
	}
	if !gatehouse.WantsNotification(u.NotificationPreferences, gatehouse.NotifySecurityAlert, gatehouse.ChannelEmail) {
		return nil
	}
	details := make([]string, 0, len(a.Factors)+1)
	for _, f := range a.Factors {
		details = append(details, f.Reason)
	}
	if a.Located {
		details = append(details, "Location: "+a.Location.String())
	}
	title := "Unusual sign-in to your account"
	if what == "refresh" {
		title = "Unusual activity in one of your sessions"
	}
	return g.mail.SendTx(ctx, tx, u.Email.String(), gatehouse.MailTemplateSecurityAlert, map[string]any{
		gatehouse.MailKeyName: u.Name, gatehouse.MailKeyTitle: title, gatehouse.MailKeyDetails: details, gatehouse.MailKeyIP: meta.IP, gatehouse.MailKeyTime: now,
	})
}

// held is a sign-in waiting for its emailed confirmation, kept in the
// cache under its challenge id's hash (heldKey) until it expires. The
// confirmation link only marks it Confirmed; the client that signed in
// takes it (TakeConfirmed) and gets the session.
type held struct {
	gatehouse.PendingSignIn
	ExpiresAt time.Time `json:"expires_at"`
	Confirmed bool      `json:"confirmed,omitempty"`
}

// heldKey is where a held sign-in waits, by its challenge id; linkKey
// leads from the emailed token's hash to it. Neither key holds a secret.
func heldKey(challengeID string) string {
	return "risk:held:" + hex.EncodeToString(token.Hash(challengeID))
}
func linkKey(hash []byte) string { return "risk:confirm:" + hex.EncodeToString(hash) }

// ConfirmPoll is how often the waiting client should ask whether the
// sign-in was confirmed (the Retry-After of the pending answer).
const ConfirmPoll = 5 * time.Second

// ConfirmTx holds a high-risk sign-in of u without MFA until the user
// confirms it: it stores a single-use token (only its hash, 15 minutes)
// in tx, keeps the sign-in's context in the cache under a new challenge
// id, and emails the link. The answer is the challenge the client shows
// ("check your email") and polls with (TakeConfirmed).
func (g *Guard) ConfirmTx(ctx context.Context, tx store.Tx, u gatehouse.User, p gatehouse.PendingSignIn, a gatehouse.RiskAssessment) (*gatehouse.MFAChallenge, error) {
	now := g.now()
	secret, hash := token.NewOpaque()
	if err := tx.SupersedeOneTimeTokens(ctx, u.ID, PurposeConfirmSignIn, now); err != nil {
		return nil, err
	}
	if err := tx.CreateOneTimeToken(ctx, gatehouse.OneTimeToken{ID: gatehouse.NewID(), UserID: u.ID, Purpose: PurposeConfirmSignIn,
		Hash: hash, CreatedAt: now, ExpiresAt: now.Add(ConfirmTTL)}); err != nil {
		return nil, err
	}
	id, _ := token.NewOpaque()
	raw, err := json.Marshal(held{PendingSignIn: p, ExpiresAt: now.Add(ConfirmTTL)})
	if err != nil {
		return nil, err
	}
	if err := g.cache.Set(ctx, heldKey(id), raw, ConfirmTTL); err != nil {
		return nil, fmt.Errorf("hold sign-in for confirmation: %w", err)
	}
	if err := g.cache.Set(ctx, linkKey(hash), []byte(heldKey(id)), ConfirmTTL); err != nil {
		return nil, fmt.Errorf("hold sign-in for confirmation: %w", err)
	}
	var where []string
	if a.Located {
		where = append(where, "Location: "+a.Location.String())
	}
	data := map[string]any{
		gatehouse.MailKeyName: u.Name, gatehouse.MailKeyTitle: p.Client.DeviceName, gatehouse.MailKeyDetails: where,
		gatehouse.MailKeyIP: p.Client.IP, gatehouse.MailKeyTime: now,
		gatehouse.MailKeyLink: link(g.opts.ConfirmURL, secret), gatehouse.MailKeyExpiresIn: "15 minutes",
	}
	if err := g.mail.SendTx(ctx, tx, u.Email.String(), gatehouse.MailTemplateNewDevice, data); err != nil {
		return nil, err
	}
	return &gatehouse.MFAChallenge{ID: id, Methods: []string{MethodEmailConfirmation}, ExpiresAt: now.Add(ConfirmTTL)}, nil
}

func link(base, secret string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "token=" + url.QueryEscape(secret)
}

var (
	errInvalidConfirmation = gatehouse.Errorf(gatehouse.CodeInvalidToken, "the confirmation link is invalid, expired or already used")
	errUnknownHeld         = gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the sign-in challenge is unknown, expired or already used; sign in again")
)

// Confirm spends a confirmation link's token (atomically: one use) and
// marks the sign-in it holds confirmed. It starts no session: the client
// that signed in does, with TakeConfirmed, so whoever opens the link gets
// no tokens. A token whose held sign-in is gone (expired, or lost with the
// cache) is invalid_token too.
func (g *Guard) Confirm(ctx context.Context, secret string) error {
	if secret == "" || len(secret) > 256 {
		return errInvalidConfirmation
	}
	hash := token.Hash(secret)
	var userID string
	err := g.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		t, err := tx.ConsumeOneTimeToken(ctx, PurposeConfirmSignIn, hash, g.now())
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidConfirmation
		}
		userID = t.UserID
		return err
	})
	if err != nil {
		return err
	}
	key, err := g.cache.Take(ctx, linkKey(hash))
	if errors.Is(err, cache.ErrMiss) {
		return errInvalidConfirmation
	} else if err != nil {
		return fmt.Errorf("confirm sign-in: %w", err)
	}
	h, err := g.held(ctx, string(key))
	if err != nil {
		if errors.Is(err, errUnknownHeld) {
			return errInvalidConfirmation
		}
		return err
	}
	if h.UserID != userID {
		return errInvalidConfirmation
	}
	h.Confirmed = true
	raw, err := json.Marshal(h)
	if err != nil {
		return err
	}
	// Only the link's one use writes the entry; TakeConfirmed takes it
	// only once it is confirmed, so this cannot revive a taken one.
	if err := g.cache.Set(ctx, string(key), raw, h.ExpiresAt.Sub(g.now())); err != nil {
		return fmt.Errorf("confirm sign-in: %w", err)
	}
	return nil
}

// held reads a held sign-in; a missing or expired one is errUnknownHeld.
func (g *Guard) held(ctx context.Context, key string) (held, error) {
	raw, err := g.cache.Get(ctx, key)
	if errors.Is(err, cache.ErrMiss) {
		return held{}, errUnknownHeld
	} else if err != nil {
		return held{}, fmt.Errorf("read held sign-in: %w", err)
	}
	var h held
	if err := json.Unmarshal(raw, &h); err != nil {
		return held{}, fmt.Errorf("read held sign-in: %w", err)
	}
	if !g.now().Before(h.ExpiresAt) {
		return held{}, errUnknownHeld
	}
	return h, nil
}

// Held is a sign-in held for an emailed confirmation, as TakeConfirmed
// answers it.
type Held struct {
	// Challenge is set while the sign-in waits for the click: nothing was
	// taken, ask again after ConfirmPoll.
	Challenge *gatehouse.MFAChallenge
	// SignIn is the confirmed sign-in, taken (once): the factors it
	// proved now end with "email".
	SignIn gatehouse.PendingSignIn
}

// TakeConfirmed is the waiting client's side of an emailed confirmation:
// before the click it answers the challenge, still open; after it, the
// held sign-in, taken atomically, so of any number of concurrent polls
// exactly one gets it. An unknown, expired or already taken challenge is
// mfa_invalid_code.
func (g *Guard) TakeConfirmed(ctx context.Context, challengeID string) (Held, error) {
	if challengeID == "" {
		return Held{}, errUnknownHeld
	}
	key := heldKey(challengeID)
	h, err := g.held(ctx, key)
	if err != nil {
		return Held{}, err
	}
	if !h.Confirmed {
		return Held{Challenge: &gatehouse.MFAChallenge{ID: challengeID, Methods: []string{MethodEmailConfirmation}, ExpiresAt: h.ExpiresAt}}, nil
	}
	raw, err := g.cache.Take(ctx, key)
	if errors.Is(err, cache.ErrMiss) {
		return Held{}, errUnknownHeld
	} else if err != nil {
		return Held{}, fmt.Errorf("take held sign-in: %w", err)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return Held{}, fmt.Errorf("take held sign-in: %w", err)
	}
	h.AMR = append(h.AMR, "email")
	return Held{SignIn: h.PendingSignIn}, nil
}

// RescoreTx recomputes a session's trust at a refresh (session.Rescorer):
// it records the device as seen, scores the refresh (geography and IP
// reputation) and, when the address changed to a risky one, raises a
// security.alert.
func (g *Guard) RescoreTx(ctx context.Context, tx store.Tx, sess gatehouse.Session, meta gatehouse.ClientInfo) (int, error) {
	now := g.now()
	ip := meta.IP
	if ip == "" {
		ip = sess.IPAddress
	}
	var dev *gatehouse.Device
	d, err := tx.TouchSessionDevice(ctx, sess.ID, now, meta.IP)
	switch {
	case err == nil:
		dev = &d
	case !errors.Is(err, store.ErrNotFound):
		return 0, err
	}
	p, err := g.profile(ctx, tx, sess.UserID)
	if err != nil {
		return 0, err
	}
	a := g.Engine.Assess(ctx, Input{UserID: sess.UserID, IP: ip, Device: dev, Refresh: true, Profile: p})
	if ip != sess.IPAddress && (a.Score >= g.Engine.High() || a.Has(FactorImpossibleTravel)) {
		u, err := tx.GetUser(ctx, sess.UserID)
		if err != nil {
			return 0, err
		}
		if err := g.AlertTx(ctx, tx, u, meta, a, "refresh", ""); err != nil {
			return 0, err
		}
	}
	return TrustFor(a, sess.MFA, dev, now), nil
}

// RecordFailure counts a failed sign-in (see Engine.RecordFailure).
func (g *Guard) RecordFailure(ctx context.Context, ip, userID string) {
	g.Engine.RecordFailure(ctx, ip, userID)
}

// StepUp reports whether an assessed sign-in must step up before it gets
// tokens: its score reaches the high threshold, or its address is on the
// operator's blocklist, whatever the score. An operator lists an address
// to stop it, so its points alone (40) must not decide.
func (g *Guard) StepUp(a gatehouse.RiskAssessment) bool {
	return a.Score >= g.Engine.High() || a.Blocklisted
}

// Denies reports whether sign-ins from ip are refused outright: it is on
// the blocklist and GATEHOUSE_IP_BLOCKLIST_ACTION is deny.
func (g *Guard) Denies(ip string) bool { return g.opts.DenyBlocklisted && g.Engine.Blocklisted(ip) }
