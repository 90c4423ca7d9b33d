// Package account holds the account lifecycle: registration, email
// verification, password login with lockout, password reset and change,
// profile updates and account deletion. Every state change commits in one
// transaction with its events and the emails it causes.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Store is what accounts need from the database.
type Store interface {
	store.Users
	// CountUsersWithRoleForUpdate is store.Roles's: BootstrapAdmin asks
	// whether an administrator exists.
	CountUsersWithRoleForUpdate(ctx context.Context, name string) (int, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Hasher hashes and verifies passwords (a *password.Hasher).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, phc string) (ok, needsRehash bool, err error)
	VerifyDummy(ctx context.Context, password string) error
}

// PasswordPolicy returns why a password is refused (nothing when it is
// acceptable); personal holds the account's email and name.
type PasswordPolicy func(password string, personal ...string) []string

// Sessions ends sessions (a *session.Service).
type Sessions interface {
	RevokeAllTx(ctx context.Context, tx store.Tx, userID, except, reason string) ([]string, error)
	Forget(ctx context.Context, ids ...string)
	Revoke(ctx context.Context, userID, sessionID, reason string) error
}

// Authority applies the rule that nobody acts on a user holding a
// permission they do not hold themselves (an *authz.Service).
type Authority interface {
	// MayActOn returns nil when actorID may lock, unlock or end the
	// sessions of userID, reading both users' permissions in tx; a
	// permission_denied error naming what actorID lacks otherwise. An
	// empty actorID is the operator at the command line.
	MayActOn(ctx context.Context, tx store.Tx, actorID, userID string) error
}

// Options tune the account rules.
type Options struct {
	LockoutThreshold int
	LockoutDuration  time.Duration
	VerifyTTL        time.Duration // email verification links (24h)
	ResetTTL         time.Duration // password reset links (1h)
	ChangeEmailTTL   time.Duration // links confirming a new email address (24h)
	// VerifyURL and ResetURL are the pages the emailed links open; the
	// token is appended as ?token=.
	VerifyURL string
	ResetURL  string
	// ChangeEmailURL is the page the link confirming a new email address
	// opens (?token= is appended).
	ChangeEmailURL string
	ServiceName    string
	// DefaultRoles are given to every new account.
	DefaultRoles []string
	// Authority makes Lock and Unlock refuse an actor acting on a user who
	// holds more than they do. Without it, Lock and Unlock by anyone but
	// the operator (an empty actor) are refused, so an unwired rule fails
	// closed.
	Authority Authority
	// OnFailure hears of every wrong password (sign-ins and confirmations
	// of sensitive actions alike), with the client address and the account
	// when one was named: the risk engine counts them. Nil ignores them.
	OnFailure func(ctx context.Context, ip, userID string)
	// UserCache keeps users for Profile in memory; the store invalidates
	// it on every change (see sqlstore.Config.OnUsersChanged). Nil reads
	// the database every time.
	UserCache UserCache
	Now       func() time.Time
	Logger    *slog.Logger
}

// UserCache is an in-process copy of users kept coherent by whoever
// changes them (a *cache.Local[gatehouse.User]).
type UserCache interface {
	// Load returns the cached user, or calls load and keeps its answer.
	Load(ctx context.Context, key string, ttl time.Duration, load func(ctx context.Context) (gatehouse.User, error)) (gatehouse.User, error)
}

// UserCacheName names the in-process user cache (its metrics and
// invalidations).
const UserCacheName = "users"

// Service runs the account lifecycle.
type Service struct {
	store    Store
	hasher   Hasher
	policy   PasswordPolicy
	mail     store.Mailer
	events   store.Emitter
	sessions Sessions
	opts     Options
}

// New makes a Service.
func New(st Store, h Hasher, policy PasswordPolicy, m store.Mailer, ev store.Emitter, sess Sessions, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.VerifyTTL == 0 {
		o.VerifyTTL = 24 * time.Hour
	}
	if o.ResetTTL == 0 {
		o.ResetTTL = time.Hour
	}
	if o.ChangeEmailTTL == 0 {
		o.ChangeEmailTTL = 24 * time.Hour
	}
	return &Service{store: st, hasher: h, policy: policy, mail: m, events: ev, sessions: sess, opts: o}
}

var (
	errInvalidCredentials = gatehouse.Errorf(gatehouse.CodeInvalidCredentials, "the email or password is wrong")
	errAccountLocked      = gatehouse.Errorf(gatehouse.CodeAccountLocked, "the account is locked")
	errInvalidToken       = gatehouse.Errorf(gatehouse.CodeInvalidToken, "the link is invalid, expired or already used")
)

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// checkPassword applies the policy, answering weak_password with reasons.
func (s *Service) checkPassword(field, password string, personal ...string) error {
	reasons := s.policy(password, personal...)
	if len(reasons) == 0 {
		return nil
	}
	e := &gatehouse.Error{Code: gatehouse.CodeWeakPassword, Message: "the password does not meet the policy: " + strings.Join(reasons, "; ")}
	for _, r := range reasons {
		e.Fields = append(e.Fields, gatehouse.FieldError{Location: field, Message: r})
	}
	return e
}

// Register creates an account with the default roles, emits
// user.registered and emails a verification link.
func (s *Service) Register(ctx context.Context, email, password, name string) (gatehouse.User, error) {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return gatehouse.User{}, err
	}
	if name, err = cleanName(name); err != nil {
		return gatehouse.User{}, err
	}
	if err := s.checkPassword("password", password, addr.String(), name); err != nil {
		return gatehouse.User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return gatehouse.User{}, fmt.Errorf("register: %w", err)
	}
	var u gatehouse.User
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		u, err = s.createTx(ctx, tx, addr, name, hash, false, s.opts.DefaultRoles)
		if err != nil {
			return err
		}
		return s.sendVerificationTx(ctx, tx, u)
	})
	return u, err
}

// CreateUser makes an account directly (the CLI): with the given roles,
// optionally already verified, and no verification email when verified.
func (s *Service) CreateUser(ctx context.Context, email, password string, roles []string, verified bool) (gatehouse.User, error) {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return gatehouse.User{}, err
	}
	if err := s.checkPassword("password", password, addr.String()); err != nil {
		return gatehouse.User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return gatehouse.User{}, err
	}
	var u gatehouse.User
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		u, err = s.createTx(ctx, tx, addr, "", hash, verified, append(append([]string{}, s.opts.DefaultRoles...), roles...))
		if err != nil || verified {
			return err
		}
		return s.sendVerificationTx(ctx, tx, u)
	})
	return u, err
}

func (s *Service) createTx(ctx context.Context, tx store.Tx, addr gatehouse.Email, name, hash string, verified bool, roles []string) (gatehouse.User, error) {
	now := s.now()
	u := gatehouse.User{ID: gatehouse.NewID(), Email: addr, Name: name, PasswordHash: hash,
		EmailVerified: verified, CreatedAt: now, UpdatedAt: now}
	if err := tx.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return u, errEmailTaken
		}
		return u, fmt.Errorf("create user: %w", err)
	}
	if len(roles) > 0 {
		if err := tx.SetUserRoles(ctx, u.ID, roles); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return u, unknownRoles(ctx, tx, roles)
			}
			return u, fmt.Errorf("assign roles: %w", err)
		}
	}
	u, err := tx.GetUser(ctx, u.ID)
	if err != nil {
		return u, err
	}
	_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserRegistered, UserID: u.ID, ActorID: u.ID,
		Data: map[string]any{"email": u.Email.String(), "email_verified": u.EmailVerified}})
	return u, err
}

// newOneTimeTx supersedes the user's earlier tokens of the purpose and
// makes a new one, returning the secret for the link.
func (s *Service) newOneTimeTx(ctx context.Context, tx store.Tx, userID string, purpose gatehouse.OneTimePurpose, ttl time.Duration) (string, error) {
	return s.newOneTimeDataTx(ctx, tx, userID, purpose, ttl, "")
}

// newOneTimeDataTx is newOneTimeTx for a token that carries data.
func (s *Service) newOneTimeDataTx(ctx context.Context, tx store.Tx, userID string, purpose gatehouse.OneTimePurpose, ttl time.Duration, data string) (string, error) {
	now := s.now()
	if err := tx.SupersedeOneTimeTokens(ctx, userID, purpose, now); err != nil {
		return "", err
	}
	secret, hash := token.NewOpaque()
	err := tx.CreateOneTimeToken(ctx, gatehouse.OneTimeToken{ID: gatehouse.NewID(), UserID: userID, Purpose: purpose,
		Hash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl), Data: data})
	return secret, err
}

func link(base, secret string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "token=" + url.QueryEscape(secret)
}

func (s *Service) sendVerificationTx(ctx context.Context, tx store.Tx, u gatehouse.User) error {
	secret, err := s.newOneTimeTx(ctx, tx, u.ID, gatehouse.PurposeVerifyEmail, s.opts.VerifyTTL)
	if err != nil {
		return fmt.Errorf("verification token: %w", err)
	}
	return s.mail.SendTx(ctx, tx, u.Email.String(), "verify_email", map[string]any{
		"Name": u.Name, "Link": link(s.opts.VerifyURL, secret), "ExpiresIn": "24 hours", "ServiceName": s.opts.ServiceName,
	})
}

// VerifyEmail consumes a verification token and marks the email verified.
func (s *Service) VerifyEmail(ctx context.Context, secret string) (gatehouse.User, error) {
	var u gatehouse.User
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		ott, err := tx.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, token.Hash(secret), s.now())
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidToken
		}
		if err != nil {
			return err
		}
		u, err = tx.GetUserForUpdate(ctx, ott.UserID)
		if err != nil {
			return err
		}
		if u.EmailVerified {
			return nil
		}
		u.VerifyEmail(s.now())
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserEmailVerified, UserID: u.ID, ActorID: u.ID,
			Data: map[string]any{"email": u.Email.String()}}); err != nil {
			return err
		}
		return s.mail.SendTx(ctx, tx, u.Email.String(), "welcome", map[string]any{"Name": u.Name, "ServiceName": s.opts.ServiceName})
	})
	return u, err
}

// ResendVerification emails a new verification link, superseding every
// earlier one. Unknown or already verified emails get nothing, and the
// caller answers 202 either way so accounts cannot be discovered.
func (s *Service) ResendVerification(ctx context.Context, email string) error {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserByEmail(ctx, addr)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.EmailVerified) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.sendVerificationTx(ctx, tx, u)
	})
}

// GetUser returns the account.
// Profile is GetUser for answers that only show the user (/auth/me): it
// may come from the in-process cache, which the store keeps coherent, so a
// warm request needs no database read. Decisions about the account (its
// password, its lock) read it with GetUser or in a transaction.
func (s *Service) Profile(ctx context.Context, id string) (gatehouse.User, error) {
	if s.opts.UserCache == nil {
		return s.GetUser(ctx, id)
	}
	u, err := s.opts.UserCache.Load(ctx, id, 0, func(ctx context.Context) (gatehouse.User, error) {
		return s.GetUser(ctx, id)
	})
	if err != nil {
		return u, err
	}
	// Callers own what they get: copy what a caller could change in place.
	u.Roles, u.MFAMethods = slices.Clone(u.Roles), slices.Clone(u.MFAMethods)
	u.NotificationPreferences = maps.Clone(u.NotificationPreferences)
	return u, nil
}

// GetUser returns the user from the database.
func (s *Service) GetUser(ctx context.Context, id string) (gatehouse.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return u, gatehouse.Errorf(gatehouse.CodeNotFound, "no such user")
	}
	return u, err
}

// unknownRoles is the validation error for roles naming one that does not
// exist; it names those, without the store's wording.
func unknownRoles(ctx context.Context, tx store.Tx, roles []string) error {
	known, err := tx.ListRoles(ctx)
	if err != nil {
		return fmt.Errorf("list roles: %w", err)
	}
	var unknown []string
	for _, r := range roles {
		if !slices.ContainsFunc(known, func(k gatehouse.Role) bool { return k.Name == r }) {
			unknown = append(unknown, strconv.Quote(r))
		}
	}
	return gatehouse.InvalidField("roles", "no role is named "+strings.Join(unknown, ", "))
}
