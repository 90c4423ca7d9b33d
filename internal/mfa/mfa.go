// Package mfa is multi-factor authentication: TOTP and SMS factors, backup
// codes, the sign-in challenge that stands between a first factor and a
// session, and turning factors off behind a step-up check.
//
// Every code is single use even under concurrent requests: a TOTP code
// advances the factor's last used step with a conditional UPDATE, backup
// and SMS codes are spent with one, and a challenge is taken from the
// cache atomically before its session starts.
package mfa

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Store is what MFA needs from the database.
type Store interface {
	store.MFA
	ConsumeOneTimeToken(ctx context.Context, purpose gatehouse.OneTimePurpose, hash []byte, now time.Time) (gatehouse.OneTimeToken, error)
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// SMS sends text messages through a job (an *sms.Service).
type SMS interface {
	EnqueueTx(ctx context.Context, tx store.Tx, to, body, ref string) error
	Available() bool
	// Failed reports whether the text sent for ref finally could not go
	// out.
	Failed(ctx context.Context, ref string) bool
}

// Accounts checks recent authentication (an *account.Service).
type Accounts interface {
	RequireRecentAuth(ctx context.Context, userID string, authTime time.Time, password string) error
}

// Options tune MFA.
type Options struct {
	// Issuer names the service in authenticator apps.
	Issuer string
	// ChallengeTTL is how long a sign-in challenge lives (5 minutes).
	ChallengeTTL time.Duration
	// CodeTTL is how long an SMS code is valid (5 minutes).
	CodeTTL time.Duration
	// MaxAttempts wrong codes end a challenge (5).
	MaxAttempts int
	// Metrics counts sign-in codes checked in
	// gatehouse_mfa_verifications_total (nil: none).
	Metrics *telemetry.Metrics
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service runs MFA.
type Service struct {
	store    Store
	cache    cache.Cache
	box      secret.Sealer
	sms      SMS
	mail     store.Mailer
	events   store.Emitter
	accounts Accounts
	opts     Options
}

// New makes a Service. sms is nil when text messages are off
// (GATEHOUSE_SMS_PROVIDER=none): SMS setup then answers 422 naming
// body.method, and the other SMS paths 503.
func New(st Store, c cache.Cache, box secret.Sealer, sms SMS, m store.Mailer, ev store.Emitter, acc Accounts, o Options) *Service {
	if o.Issuer == "" {
		o.Issuer = "Gatehouse"
	}
	if o.ChallengeTTL == 0 {
		o.ChallengeTTL = 5 * time.Minute
	}
	if o.CodeTTL == 0 {
		o.CodeTTL = 5 * time.Minute
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{store: st, cache: c, box: box, sms: sms, mail: m, events: ev, accounts: acc, opts: o}
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

var (
	errInvalidCode = gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the code is wrong, expired or already used")
	errSMSDown     = gatehouse.Errorf(gatehouse.CodeUnavailable, "text messages cannot be sent right now; use another method or try again in a few minutes")
	// errSMSOff answers an SMS setup on a server without an SMS sender
	// (GATEHOUSE_SMS_PROVIDER=none): not a passing outage but a method
	// this server does not offer.
	errSMSOff = gatehouse.InvalidField("method", `text messages are off on this server; use "totp"`)
)

// SetupResult is the answer to a setup: the TOTP secret and how to enrol
// it, or the phone number a code was sent to.
type SetupResult struct {
	Method      string
	Secret      string
	OTPAuthURL  string
	QRCode      string // data:image/png;base64,...
	PhoneNumber string
}

// Setup starts enrolling a factor; nothing protects the account until
// Activate proves a code from it. A new setup replaces a pending one of the
// same method; a method already active must be disabled first (409). An
// SMS setup for the number already pending is a resend: it texts the code
// already sent while that lives.
func (s *Service) Setup(ctx context.Context, userID, method, phone string) (SetupResult, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return SetupResult{}, err
	}
	factors, err := s.store.ListMFAFactors(ctx, userID)
	if err != nil {
		return SetupResult{}, err
	}
	for _, f := range factors {
		if f.Method == method && f.Active() {
			return SetupResult{}, gatehouse.Errorf(gatehouse.CodeConflict, "%s is already enabled; disable it before setting it up again", method)
		}
	}
	f := gatehouse.MFAFactor{ID: gatehouse.NewID(), UserID: userID, Method: method, CreatedAt: s.now()}
	var res SetupResult
	kept := false
	switch method {
	case gatehouse.MFAMethodTOTP:
		key, err := newTOTPKey(s.opts.Issuer, u.Email.String())
		if err != nil {
			return SetupResult{}, fmt.Errorf("totp setup: %w", err)
		}
		qr, err := qrDataURI(key.Image)
		if err != nil {
			return SetupResult{}, fmt.Errorf("totp setup: %w", err)
		}
		f.Secret = s.box.Seal([]byte(key.Secret()), factorAD(f))
		res = SetupResult{Method: method, Secret: key.Secret(), OTPAuthURL: key.URL(), QRCode: qr}
	case gatehouse.MFAMethodSMS:
		if s.sms == nil {
			return SetupResult{}, errSMSOff
		}
		if f.PhoneNumber, err = gatehouse.ParsePhoneNumber("phone_number", phone); err != nil {
			return SetupResult{}, err
		}
		if s.sms == nil || !s.sms.Available() {
			return SetupResult{}, errSMSDown
		}
		if err := s.countText(ctx, userID); err != nil {
			return SetupResult{}, err
		}
		res = SetupResult{Method: method, PhoneNumber: f.PhoneNumber}
	default:
		return SetupResult{}, gatehouse.InvalidField("method", `method must be "totp" or "sms"`)
	}
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		s.retrying(ctx, userID, &kept)
		// Under the user's lock, so a concurrent Activate cannot turn the
		// pending factor this replaces on meanwhile.
		if _, err := tx.GetUserForUpdate(ctx, userID); err != nil {
			return err
		}
		factors, err := tx.ListMFAFactors(ctx, userID)
		if err != nil {
			return err
		}
		resend := false
		for _, old := range factors {
			if old.Method != method {
				continue
			}
			if old.Active() {
				return gatehouse.Errorf(gatehouse.CodeConflict, "%s is already enabled; disable it before setting it up again", method)
			}
			if method == gatehouse.MFAMethodSMS && old.PhoneNumber == f.PhoneNumber {
				// A resend: the same setup, so the same code while it
				// lives (sendCodeTx); whichever text arrives works.
				f, resend = old, true
				continue
			}
			if err := tx.DeleteMFAFactor(ctx, userID, old.ID); err != nil {
				return err
			}
		}
		if !resend {
			if err := tx.CreateMFAFactor(ctx, f); err != nil {
				return err
			}
		}
		if method == gatehouse.MFAMethodSMS {
			kept, err = s.sendCodeTx(ctx, tx, userID, f.PhoneNumber, setupRef(f.ID))
		}
		return err
	})
	if err != nil {
		if kept {
			s.forgetCode(ctx, userID) // its row rolled back
		}
		return SetupResult{}, err
	}
	return res, nil
}

// Activate proves a code from the pending factor of method and turns it
// on. It answers a fresh set of backup codes (any earlier set stops
// working): they are shown this once.
func (s *Service) Activate(ctx context.Context, userID, method, code string) ([]string, error) {
	factors, err := s.store.ListMFAFactors(ctx, userID)
	if err != nil {
		return nil, err
	}
	var pending *gatehouse.MFAFactor
	for i := range factors {
		if factors[i].Method == method && !factors[i].Active() {
			pending = &factors[i]
		}
	}
	if pending == nil {
		return nil, gatehouse.InvalidField("method", "no "+method+" setup is waiting for activation; call /auth/mfa/setup first")
	}
	var step int64
	err = s.limitWrongCodes(ctx, userID, func() error {
		switch method {
		case gatehouse.MFAMethodTOTP:
			secret, err := s.openSecret(*pending)
			if err != nil {
				return err
			}
			if step = matchTOTP(secret, s.now(), code); step == 0 {
				return errInvalidCode
			}
		case gatehouse.MFAMethodSMS:
			if _, err := s.store.ConsumeOneTimeToken(ctx, gatehouse.PurposeMFASMS, smsHash(setupRef(pending.ID), code), s.now()); err != nil {
				return codeError(err)
			}
			s.forgetCode(ctx, userID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	codes, hashes := newBackupCodes()
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		// The user's lock orders this against Disable: whichever runs
		// second sees the other's factors.
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		now := s.now()
		if err := tx.ActivateMFAFactor(ctx, userID, pending.ID, step, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errInvalidCode // activated or replaced meanwhile
			}
			return err
		}
		if err := tx.ReplaceBackupCodes(ctx, userID, hashes, now); err != nil {
			return err
		}
		return s.changedTx(ctx, tx, u, gatehouse.EventUserMFAEnabled, method, true,
			"Two-step verification was turned on", "A "+methodName(method)+" was added as a second step when you sign in.")
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// Disable removes the active factor of method. It needs recent
// authentication (authTime within five minutes, or password) and a valid
// code from any factor or a backup code. Removing the last factor turns
// MFA off and deletes the backup codes.
func (s *Service) Disable(ctx context.Context, userID, sessionID string, authTime time.Time, method, code, password string) error {
	if err := s.accounts.RequireRecentAuth(ctx, userID, authTime, password); err != nil {
		return err
	}
	factors, err := s.store.ListMFAFactors(ctx, userID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(factors, func(f gatehouse.MFAFactor) bool { return f.Method == method && f.Active() })
	if i < 0 {
		return gatehouse.Errorf(gatehouse.CodeNotFound, "%s is not enabled", methodName(method))
	}
	if err := s.checkCodeLimited(ctx, userID, factors, code, sessionRef(sessionID)); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		// Lock the user, then read the factors again: a factor activated
		// or removed since the list above decides what remains.
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		factors, err := tx.ListMFAFactors(ctx, userID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(factors, func(f gatehouse.MFAFactor) bool { return f.Method == method && f.Active() })
		if i < 0 {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "%s is not enabled", methodName(method))
		}
		if err := tx.DeleteMFAFactor(ctx, userID, factors[i].ID); err != nil {
			return err
		}
		remaining := slices.ContainsFunc(factors, func(f gatehouse.MFAFactor) bool { return f.ID != factors[i].ID && f.Active() })
		if !remaining {
			if err := tx.ReplaceBackupCodes(ctx, userID, nil, s.now()); err != nil {
				return err
			}
		}
		return s.changedTx(ctx, tx, u, gatehouse.EventUserMFADisabled, method, remaining,
			"A second sign-in step was removed", "The "+methodName(method)+" no longer protects your account.")
	})
}

// RemainingBackupCodes counts the unused backup codes.
func (s *Service) RemainingBackupCodes(ctx context.Context, userID string) (int, error) {
	return s.store.CountBackupCodes(ctx, userID)
}

// RegenerateBackupCodes replaces the backup codes after recent
// authentication and a valid code (TOTP, an SMS code sent to this session,
// or a backup code of the old set).
func (s *Service) RegenerateBackupCodes(ctx context.Context, userID, sessionID string, authTime time.Time, code, password string) ([]string, error) {
	if err := s.accounts.RequireRecentAuth(ctx, userID, authTime, password); err != nil {
		return nil, err
	}
	factors, err := s.activeFactors(ctx, userID)
	if err != nil {
		return nil, err
	}
	if len(factors) == 0 {
		return nil, gatehouse.Errorf(gatehouse.CodeConflict, "two-step verification is not enabled")
	}
	if err := s.checkCodeLimited(ctx, userID, factors, code, sessionRef(sessionID)); err != nil {
		return nil, err
	}
	codes, hashes := newBackupCodes()
	if err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		// A Disable of the last factor meanwhile deleted the codes; new
		// ones must not outlive it.
		if _, err := tx.GetUserForUpdate(ctx, userID); err != nil {
			return err
		}
		all, err := tx.ListMFAFactors(ctx, userID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(all, gatehouse.MFAFactor.Active) {
			return gatehouse.Errorf(gatehouse.CodeConflict, "two-step verification is not enabled")
		}
		return tx.ReplaceBackupCodes(ctx, userID, hashes, s.now())
	}); err != nil {
		return nil, err
	}
	return codes, nil
}

// SendToSession texts a code to the account's SMS factor for a signed-in
// session, to confirm Disable or RegenerateBackupCodes.
func (s *Service) SendToSession(ctx context.Context, userID, sessionID string) error {
	factors, err := s.activeFactors(ctx, userID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(factors, func(f gatehouse.MFAFactor) bool { return f.Method == gatehouse.MFAMethodSMS })
	if i < 0 {
		return gatehouse.Errorf(gatehouse.CodeNotFound, "no phone number is enabled for codes")
	}
	if s.sms == nil || !s.sms.Available() {
		return errSMSDown
	}
	if err := s.countText(ctx, userID); err != nil {
		return err
	}
	return s.sendCode(ctx, userID, factors[i].PhoneNumber, sessionRef(sessionID))
}

// changedTx flips the user's MFA flag as needed and records the change:
// the event and a security email. u was read with GetUserForUpdate at the
// start of tx.
func (s *Service) changedTx(ctx context.Context, tx store.Tx, u gatehouse.User, ev gatehouse.EventType, method string, enabled bool, title, detail string) error {
	userID := u.ID
	if u.MFAEnabled != enabled {
		u.MFAEnabled = enabled
		u.UpdatedAt = s.now()
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: ev, UserID: userID, ActorID: userID,
		Data: map[string]any{"method": method, "mfa_enabled": enabled}}); err != nil {
		return err
	}
	if !gatehouse.WantsNotification(u.NotificationPreferences, gatehouse.NotifyMFAChanged, gatehouse.ChannelEmail) {
		return nil
	}
	return s.mail.SendTx(ctx, tx, u.Email.String(), "security_alert", map[string]any{
		"Name": u.Name, "ServiceName": s.opts.Issuer, "Title": title, "Details": []string{detail},
		"Time": s.now(),
	})
}

func (s *Service) activeFactors(ctx context.Context, userID string) ([]gatehouse.MFAFactor, error) {
	all, err := s.store.ListMFAFactors(ctx, userID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(f gatehouse.MFAFactor) bool { return !f.Active() }), nil
}

func (s *Service) openSecret(f gatehouse.MFAFactor) (string, error) {
	b, err := s.box.Open(f.Secret, factorAD(f))
	if err != nil {
		return "", fmt.Errorf("open totp secret of factor %s: %w", f.ID, err)
	}
	return string(b), nil
}

// factorAD binds a sealed secret to its factor, so a secret copied onto
// another row does not open.
func factorAD(f gatehouse.MFAFactor) []byte { return []byte("mfa-factor:" + f.ID + ":" + f.UserID) }

// SealedColumn is where TOTP secrets are kept sealed (SMS factors have
// none), for master key rotation.
func SealedColumn() secret.Column {
	return secret.Column{Table: "mfa_factors", Name: "secret", ID: "id", Context: []string{"user_id"}, Where: "secret IS NOT NULL",
		Rewrite: secret.Plain(func(row []string) []byte { return factorAD(gatehouse.MFAFactor{ID: row[0], UserID: row[1]}) })}
}

func setupRef(factorID string) string    { return "setup:" + factorID }
func sessionRef(sessionID string) string { return "session:" + sessionID }

func methodName(method string) string {
	if method == gatehouse.MFAMethodSMS {
		return "phone number for text-message codes"
	}
	return "authenticator app"
}

// qrDataURI renders the enrolment QR code as a PNG data URI.
func qrDataURI(img func(w, h int) (image.Image, error)) (string, error) {
	i, err := img(256, 256)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, i); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// codeError maps a failed one-time-token consumption to the MFA answer.
func codeError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errInvalidCode
	}
	return err
}
