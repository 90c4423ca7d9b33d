// Package signin owns signing in. Each way in proves a first factor with
// the capability that knows it — a password (account), an emailed link
// (account), a passkey assertion (passkey), an external identity (oauth) —
// and hands the attempt here; the Flow then runs the same steps for all of
// them, in one transaction: the account must not be locked, risk scores
// the attempt, a risky one steps up (an MFA challenge, or an emailed
// confirmation) and an account with MFA meets its challenge, and a
// completed one admits its device, starts the session and emits
// user.login. The second steps come back here too (Flow.MFA,
// Flow.Confirmed), so the capabilities never call each other, and the API,
// the hosted pages and the OpenID Provider all sign in through one owner.
package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/device"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
	"github.com/gatehouse-auth/gatehouse/internal/oauth"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Store is the database: the sign-in's transaction.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Accounts proves passwords and records refused sign-ins (an
// *account.Service).
type Accounts interface {
	CheckPassword(ctx context.Context, email, password string, client gatehouse.ClientInfo) (userID, rehash string, err error)
	UserIDByEmail(ctx context.Context, email string) (string, error)
	RecordRefusal(ctx context.Context, userID string, client gatehouse.ClientInfo, reason string) error
	// Profile returns the user for an answer that only shows it (the
	// token response's user): from the in-process cache when warm, which
	// the store keeps coherent, so a refresh needs no read of it.
	Profile(ctx context.Context, id string) (gatehouse.User, error)
}

// MagicLinks spends emailed sign-in links (an *account.MagicLinks).
type MagicLinks interface {
	Spend(ctx context.Context, secret string, claim bool) (userID string, err error)
}

// MFA holds sign-ins behind a second factor and meets their challenges
// (an *mfa.Service).
type MFA interface {
	Challenge(ctx context.Context, tx store.Tx, u gatehouse.User, p gatehouse.PendingSignIn) (*gatehouse.MFAChallenge, error)
	Verify(ctx context.Context, challengeID, method, code string) (gatehouse.PendingSignIn, error)
}

// Risk scores sign-ins, alerts and holds risky ones for an emailed
// confirmation (a *risk.Guard).
type Risk interface {
	Denies(ip string) bool
	Assess(ctx context.Context, tx store.Tx, u gatehouse.User, client gatehouse.ClientInfo) (gatehouse.RiskAssessment, *risk.Profile, error)
	StepUp(a gatehouse.RiskAssessment) bool
	Alerting(a gatehouse.RiskAssessment) bool
	AlertTx(ctx context.Context, tx store.Tx, u gatehouse.User, client gatehouse.ClientInfo, a gatehouse.RiskAssessment, what, stepUp string) error
	ConfirmTx(ctx context.Context, tx store.Tx, u gatehouse.User, p gatehouse.PendingSignIn, a gatehouse.RiskAssessment) (*gatehouse.MFAChallenge, error)
	Confirm(ctx context.Context, secret string) error
	TakeConfirmed(ctx context.Context, challengeID string) (risk.Held, error)
	RecordSignIn(ctx context.Context, tx store.Tx, userID string, a gatehouse.RiskAssessment, p *risk.Profile) error
}

// Devices registers the devices sign-ins come from (a *device.Service).
type Devices interface {
	RegisterTx(ctx context.Context, tx store.Tx, u gatehouse.User, sg device.Sighting) (gatehouse.Device, bool, error)
}

// Sessions starts sessions and signs their access tokens (a
// *session.Service).
type Sessions interface {
	Start(ctx context.Context, tx store.Tx, userID string, client gatehouse.ClientInfo, amr []string, mfa bool) (gatehouse.Session, string, error)
	AccessToken(ctx context.Context, sess gatehouse.Session) (string, token.Claims, error)
}

// Passkeys verifies passkey assertions (a *passkey.Service).
type Passkeys interface {
	FinishLogin(ctx context.Context, challengeID string, credential json.RawMessage, client gatehouse.ClientInfo) (gatehouse.PendingSignIn, bool, error)
}

// OAuth finishes social-login flows (an *oauth.Service).
type OAuth interface {
	Callback(ctx context.Context, provider string, in oauth.CallbackInput, client gatehouse.ClientInfo) (oauth.Result, error)
	Exchange(ctx context.Context, code string, client gatehouse.ClientInfo) (gatehouse.PendingSignIn, error)
}

// Deps is what a Flow is made of. Every field is required.
type Deps struct {
	Store      Store
	Accounts   Accounts
	MagicLinks MagicLinks
	MFA        MFA
	Risk       Risk
	Devices    Devices
	Sessions   Sessions
	Events     store.Emitter
	Passkeys   Passkeys
	OAuth      OAuth
	// Metrics counts sign-ins in gatehouse_logins_total (nil: none).
	Metrics *telemetry.Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Flow signs users in.
type Flow struct{ d Deps }

// New makes a Flow.
func New(d Deps) *Flow {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Flow{d: d}
}

func (f *Flow) now() time.Time { return f.d.Now().UTC().Truncate(time.Microsecond) }

// Proof is what a sign-in has proven beyond its first factor.
type Proof int

// The proofs.
const (
	// FirstFactor only: a risky sign-in steps up, and an account with MFA
	// meets its challenge.
	FirstFactor Proof = iota
	// SecondFactor: two factors are proven (an MFA challenge was met, or a
	// passkey verified its user); the session is marked MFA.
	SecondFactor
	// Confirmed: a risky sign-in was confirmed by its emailed link.
	Confirmed
)

// Attempt is a sign-in whose first factor a capability proved.
type Attempt struct {
	gatehouse.PendingSignIn
	Proof Proof
	// Rehash is a new password hash to store (made when the stored one
	// used other parameters); it is written even when the sign-in is held.
	Rehash string
}

// reasonBlocklisted is the user.login_failed reason of a sign-in refused
// because its address is on the blocklist (GATEHOUSE_IP_BLOCKLIST_ACTION=deny).
const reasonBlocklisted = "ip_blocklisted"

var (
	errAccountLocked = gatehouse.Errorf(gatehouse.CodeAccountLocked, "the account is locked")
	errAddressDenied = gatehouse.Errorf(gatehouse.CodeAccessDenied, "sign-in from this network address is not allowed")
)

// Password signs in with an email and password. An address the operator
// blocks is refused before the password is checked, with the same answer
// for every account and password, so it learns nothing.
func (f *Flow) Password(ctx context.Context, email, password string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error) {
	if f.d.Risk.Denies(client.IP) {
		userID, err := f.d.Accounts.UserIDByEmail(ctx, email)
		if err != nil {
			return gatehouse.SignInResult{}, err
		}
		return gatehouse.SignInResult{}, f.failed(methodPassword, f.refuse(ctx, userID, client))
	}
	userID, rehash, err := f.d.Accounts.CheckPassword(ctx, email, password, client)
	if err != nil {
		return gatehouse.SignInResult{}, f.failed(methodPassword, err)
	}
	return f.Complete(ctx, Attempt{PendingSignIn: gatehouse.PendingSignIn{UserID: userID, Client: client,
		AMR: []string{"pwd"}, Method: methodPassword}, Rehash: rehash})
}

// MagicLink signs in with an emailed link's token (amr "email"); the link
// proves the mailbox. From a blocked address the link is spent and claims
// nothing.
func (f *Flow) MagicLink(ctx context.Context, secret string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error) {
	denied := f.d.Risk.Denies(client.IP)
	userID, err := f.d.MagicLinks.Spend(ctx, secret, !denied)
	if err != nil {
		return gatehouse.SignInResult{}, f.failed(methodMagicLink, err)
	}
	if denied {
		return gatehouse.SignInResult{}, f.failed(methodMagicLink, f.refuse(ctx, userID, client))
	}
	return f.Complete(ctx, Attempt{PendingSignIn: gatehouse.PendingSignIn{UserID: userID, Client: client,
		AMR: []string{"email"}, Method: methodMagicLink}})
}

// MFA meets a sign-in's MFA challenge with a code and completes it.
func (f *Flow) MFA(ctx context.Context, challengeID, method, code string) (gatehouse.SignInResult, error) {
	p, err := f.d.MFA.Verify(ctx, challengeID, method, code)
	if err != nil {
		return gatehouse.SignInResult{}, f.failed(methodMFA, err)
	}
	return f.complete(ctx, methodMFA, Attempt{PendingSignIn: p, Proof: SecondFactor})
}

// ConfirmLink is the click on an emailed confirmation link: it only marks
// the held sign-in confirmed, and whoever clicked gets no tokens.
func (f *Flow) ConfirmLink(ctx context.Context, secret string) error {
	return f.d.Risk.Confirm(ctx, secret)
}

// Confirmed is the waiting client's poll of a sign-in held for an emailed
// confirmation. Before the click it answers only the open challenge; after
// it, the session, once (concurrent polls start one).
func (f *Flow) Confirmed(ctx context.Context, challengeID string) (gatehouse.SignInResult, error) {
	h, err := f.d.Risk.TakeConfirmed(ctx, challengeID)
	if err != nil {
		return gatehouse.SignInResult{}, err
	}
	if h.Challenge != nil {
		return gatehouse.SignInResult{Challenge: h.Challenge}, nil
	}
	return f.Complete(ctx, Attempt{PendingSignIn: h.SignIn, Proof: Confirmed})
}

// Passkey signs in with a passkey assertion. One that verified its user
// (a PIN or biometric) is two factors; a touch alone is one, like a
// password.
func (f *Flow) Passkey(ctx context.Context, challengeID string, credential json.RawMessage, client gatehouse.ClientInfo) (gatehouse.SignInResult, error) {
	p, verified, err := f.d.Passkeys.FinishLogin(ctx, challengeID, credential, client)
	if err != nil {
		return gatehouse.SignInResult{}, f.failed(methodPasskey, err)
	}
	a := Attempt{PendingSignIn: p}
	if verified {
		a.Proof = SecondFactor
	}
	return f.Complete(ctx, a)
}

// OAuthCallback finishes a social-login flow: it signs in, or, for a flow
// started with a redirect_uri, answers where to send the browser with a
// one-time code (OAuthExchange signs in with it).
func (f *Flow) OAuthCallback(ctx context.Context, provider string, in oauth.CallbackInput, client gatehouse.ClientInfo) (res gatehouse.SignInResult, redirect string, err error) {
	r, err := f.d.OAuth.Callback(ctx, provider, in, client)
	if err != nil {
		return gatehouse.SignInResult{}, r.Redirect, f.failed(methodOAuth, err)
	}
	if r.SignIn == nil {
		return gatehouse.SignInResult{}, r.Redirect, nil
	}
	res, err = f.Complete(ctx, Attempt{PendingSignIn: *r.SignIn})
	return res, "", err
}

// OAuthExchange signs in with a social-login flow's one-time code.
func (f *Flow) OAuthExchange(ctx context.Context, code string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error) {
	p, err := f.d.OAuth.Exchange(ctx, code, client)
	if err != nil {
		return gatehouse.SignInResult{}, f.failed(methodOAuth, err)
	}
	return f.Complete(ctx, Attempt{PendingSignIn: p})
}

// Issue signs a fresh access token for a session, e.g. after a refresh.
func (f *Flow) Issue(ctx context.Context, sess gatehouse.Session, refresh string) (gatehouse.SignInResult, error) {
	u, err := f.d.Accounts.Profile(ctx, sess.UserID)
	if err != nil {
		return gatehouse.SignInResult{}, fmt.Errorf("issue access token: %w", err)
	}
	return f.withAccess(ctx, gatehouse.SignInResult{User: u, Session: sess, RefreshToken: refresh})
}

// refuse answers access_denied for a sign-in from a blocked address, with
// a user.login_failed row when the account is known.
func (f *Flow) refuse(ctx context.Context, userID string, client gatehouse.ClientInfo) error {
	if err := f.d.Accounts.RecordRefusal(ctx, userID, client, reasonBlocklisted); err != nil {
		return err
	}
	return errAddressDenied
}

// Complete runs a sign-in whose first factor passed, in one transaction:
//
//   - a locked account is refused (account_locked), and so is every way in
//     from an address the operator blocks (access_denied, with a
//     user.login_failed row);
//   - risk scores the attempt (the device is named by the client's device
//     id, else the device cookie, else the User-Agent: see
//     fingerprint.Fingerprint). Unless a step-up was met already, a score at or
//     above the high threshold, or a blocklisted address, holds it behind a
//     challenge (MFA when the account has it, else an emailed
//     confirmation) and raises security.alert; so do the alerting factors,
//     without holding it;
//   - unless two factors are proven, an account with MFA gets its
//     challenge;
//   - a completed sign-in registers its device, records where it came from,
//     starts a session carrying the device, location and trust score, and
//     emits user.login with the risk score and factors for the audit row;
//     then the access token is signed.
//
// A held sign-in answers only User and Challenge, and writes nothing but
// a rehash. The outcome is counted in gatehouse_logins_total under the
// attempt's method.
func (f *Flow) Complete(ctx context.Context, a Attempt) (gatehouse.SignInResult, error) {
	return f.complete(ctx, loginMethod(a.Method), a)
}

// complete is Complete counting the outcome under method.
func (f *Flow) complete(ctx context.Context, method string, a Attempt) (gatehouse.SignInResult, error) {
	res, held, err := f.run(ctx, a)
	switch {
	case err != nil:
		return res, f.failed(method, err)
	case res.Challenge != nil:
		f.d.Metrics.Login(method, held)
	default:
		f.d.Metrics.Login(method, resultSuccess)
	}
	return res, err
}

// run is Complete; a held sign-in also answers why: resultStepUp or
// resultMFARequired.
func (f *Flow) run(ctx context.Context, a Attempt) (gatehouse.SignInResult, string, error) {
	client := a.Client
	if f.d.Risk.Denies(client.IP) {
		return gatehouse.SignInResult{}, "", f.refuse(ctx, a.UserID, client)
	}
	if client.Fingerprint == "" {
		client.Fingerprint = fingerprint.Fingerprint(client.DeviceID, fingerprint.CookieFrom(ctx), client.UserAgent)
	}
	if client.DeviceName == "" {
		client.DeviceName = fingerprint.ParseUA(client.UserAgent).Name()
	}
	a.Client = client
	twoFactors := a.Proof == SecondFactor
	var out gatehouse.SignInResult
	held := ""
	err := f.d.Store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserForUpdate(ctx, a.UserID)
		if err != nil {
			return err
		}
		now := f.now()
		if u.Locked(now) {
			return errAccountLocked
		}
		if a.Rehash != "" {
			u.PasswordHash = a.Rehash
		}
		hold := func(ch *gatehouse.MFAChallenge, why string) error {
			out = gatehouse.SignInResult{User: u, Challenge: ch}
			held = why
			if a.Rehash == "" {
				return nil
			}
			u.UpdatedAt = now
			return tx.UpdateUser(ctx, u)
		}
		assessed, profile, err := f.d.Risk.Assess(ctx, tx, u, client)
		if err != nil {
			return err
		}
		if a.Proof == FirstFactor && f.d.Risk.StepUp(assessed) {
			ch, how, err := f.stepUp(ctx, tx, u, a.PendingSignIn, assessed)
			if err != nil {
				return err
			}
			if err := f.d.Risk.AlertTx(ctx, tx, u, client, assessed, "sign_in", how); err != nil {
				return err
			}
			return hold(ch, resultStepUp)
		}
		if a.Proof == FirstFactor && f.d.Risk.Alerting(assessed) {
			if err := f.d.Risk.AlertTx(ctx, tx, u, client, assessed, "sign_in", ""); err != nil {
				return err
			}
		}
		if !twoFactors && u.MFAEnabled {
			ch, err := f.d.MFA.Challenge(ctx, tx, u, a.PendingSignIn)
			if err != nil {
				return err
			}
			if ch != nil {
				return hold(ch, resultMFARequired)
			}
		}
		// Before RecordLogin: an account's first sign-in is told apart by
		// its empty LastLoginAt, and its first device is no news.
		d, _, err := f.d.Devices.RegisterTx(ctx, tx, u, device.Sighting{
			Fingerprint: client.Fingerprint, UserAgent: client.UserAgent, IP: client.IP,
			Location: assessed.Location.String(), Announce: u.LastLoginAt != nil,
		})
		if err != nil {
			return fmt.Errorf("register device: %w", err)
		}
		if err := f.d.Risk.RecordSignIn(ctx, tx, u.ID, assessed, profile); err != nil {
			return err
		}
		client.DeviceRef, client.Location = d.ID, assessed.Location.String()
		client.TrustScore = risk.TrustFor(assessed, twoFactors, &d, now)
		u.RecordLogin(now)
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		sess, refresh, err := f.d.Sessions.Start(ctx, tx, u.ID, client, a.AMR, twoFactors)
		if err != nil {
			return err
		}
		data := map[string]any{
			"method": a.Method, "mfa": twoFactors, "ip_address": client.IP, "user_agent": client.UserAgent,
			"risk_score": assessed.Score, "risk_level": assessed.Level, "risk_factors": assessed.Data(),
			"device_id": client.DeviceRef, "trust_score": client.TrustScore, "session_id": sess.ID,
		}
		if client.Location != "" {
			data["location"] = client.Location
		}
		if _, err := f.d.Events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLogin, UserID: u.ID, ActorID: u.ID, Data: data}); err != nil {
			return err
		}
		out = gatehouse.SignInResult{User: u, Session: sess, RefreshToken: refresh}
		return nil
	})
	if err != nil {
		return gatehouse.SignInResult{}, "", err
	}
	if out.Challenge != nil {
		return out, held, nil
	}
	out, err = f.withAccess(ctx, out)
	return out, "", err
}

// The methods and results of gatehouse_logins_total (telemetry.LoginMethods
// and LoginResults).
const (
	methodPassword  = "password"
	methodMagicLink = "magic_link"
	methodPasskey   = "passkey"
	methodOAuth     = "oauth"
	methodMFA       = "mfa"

	resultSuccess     = "success"
	resultFailure     = "failure"
	resultLocked      = "locked"
	resultMFARequired = "mfa_required"
	resultStepUp      = "step_up"
)

// loginMethod is the metric label of a PendingSignIn's method: social
// logins ("oauth:google") count as oauth, so providers add no series.
func loginMethod(m string) string {
	if strings.HasPrefix(m, methodOAuth+":") {
		return methodOAuth
	}
	return m
}

// failed counts a refused sign-in (locked for account_locked, failure for
// the other refusals) and answers err. An outage or internal error says
// nothing about the attempt and is not counted.
func (f *Flow) failed(method string, err error) error {
	switch code := gatehouse.ErrorCode(err); {
	case errors.Is(err, gatehouse.ErrUnavailable), code == gatehouse.CodeInternal:
	case code == gatehouse.CodeAccountLocked:
		f.d.Metrics.Login(method, resultLocked)
	default:
		f.d.Metrics.Login(method, resultFailure)
	}
	return err
}

// stepUp holds a risky sign-in: behind an MFA challenge when the account
// has an active factor, else behind an emailed confirmation. It names
// which.
func (f *Flow) stepUp(ctx context.Context, tx store.Tx, u gatehouse.User, p gatehouse.PendingSignIn, a gatehouse.RiskAssessment) (*gatehouse.MFAChallenge, string, error) {
	if u.MFAEnabled {
		ch, err := f.d.MFA.Challenge(ctx, tx, u, p)
		if err != nil || ch != nil {
			return ch, "mfa", err
		}
	}
	ch, err := f.d.Risk.ConfirmTx(ctx, tx, u, p, a)
	return ch, "email", err
}

func (f *Flow) withAccess(ctx context.Context, r gatehouse.SignInResult) (gatehouse.SignInResult, error) {
	access, claims, err := f.d.Sessions.AccessToken(ctx, r.Session)
	if err != nil {
		return gatehouse.SignInResult{}, err
	}
	r.AccessToken = access
	r.ExpiresIn = int(claims.ExpiresAt.Sub(claims.IssuedAt).Seconds())
	return r, nil
}
