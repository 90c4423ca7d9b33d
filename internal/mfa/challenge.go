package mfa

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// challenge is what the cache holds for an open sign-in challenge. The
// cache key is derived from a hash of the id, so the cache never holds
// the id itself.
type challenge struct {
	gatehouse.PendingSignIn
	Methods   []string  `json:"methods"`
	Phone     string    `json:"phone,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// maxSends caps the codes one challenge may text.
const maxSends = 5

func challengeKey(id string) string  { return "mfa:challenge:" + hex.EncodeToString(token.Hash(id)) }
func failuresKey(key string) string  { return key + ":failures" }
func sendsKey(key string) string     { return key + ":sends" }
func smsFailedKey(ref string) string { return "mfa:sms-failed:" + ref }

// Challenge holds the sign-in p of u behind a second factor when u has an
// active one, and answers the challenge (nil when u has none). When the
// only factor is SMS the code goes out at once, inside tx.
func (s *Service) Challenge(ctx context.Context, tx store.Tx, u gatehouse.User, p gatehouse.PendingSignIn) (*gatehouse.MFAChallenge, error) {
	all, err := tx.ListMFAFactors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	c := challenge{PendingSignIn: p, ExpiresAt: s.now().Add(s.opts.ChallengeTTL)}
	for _, f := range all {
		if !f.Active() || slices.Contains(c.Methods, f.Method) {
			continue
		}
		c.Methods = append(c.Methods, f.Method)
		if f.Method == gatehouse.MFAMethodSMS {
			c.Phone = f.PhoneNumber
		}
	}
	if len(c.Methods) == 0 {
		return nil, nil
	}
	smsOnly := len(c.Methods) == 1 && c.Phone != ""
	if n, err := tx.CountBackupCodes(ctx, u.ID); err != nil {
		return nil, err
	} else if n > 0 {
		c.Methods = append(c.Methods, gatehouse.MFAMethodBackupCode)
	}
	id, _ := token.NewOpaque()
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	key := challengeKey(id)
	if err := s.cache.Set(ctx, key, raw, s.opts.ChallengeTTL); err != nil {
		return nil, fmt.Errorf("open mfa challenge: %w", err)
	}
	if smsOnly {
		if s.sms == nil || !s.sms.Available() {
			if len(c.Methods) == 1 {
				return nil, errSMSDown
			}
			// Texts cannot go out, but a backup code can still meet the
			// challenge; verify with sms answers 503 meanwhile.
			s.smsDown(ctx, key)
			return &gatehouse.MFAChallenge{ID: id, Methods: c.Methods, ExpiresAt: c.ExpiresAt}, nil
		}
		if _, err := s.cache.Incr(ctx, sendsKey(key), 1, s.opts.ChallengeTTL); err != nil {
			return nil, err
		}
		if _, err := s.sendCodeTx(ctx, tx, u.ID, c.Phone, key); err != nil {
			return nil, err
		}
	}
	return &gatehouse.MFAChallenge{ID: id, Methods: c.Methods, ExpiresAt: c.ExpiresAt}, nil
}

// load reads an open challenge; a missing or expired one is an invalid code.
func (s *Service) load(ctx context.Context, id string) (string, challenge, error) {
	key := challengeKey(id)
	raw, err := s.cache.Get(ctx, key)
	if errors.Is(err, cache.ErrMiss) {
		return "", challenge{}, gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the sign-in challenge is unknown or expired; sign in again")
	}
	if err != nil {
		return "", challenge{}, err
	}
	var c challenge
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", challenge{}, fmt.Errorf("read mfa challenge: %w", err)
	}
	if !s.now().Before(c.ExpiresAt) {
		return "", challenge{}, gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the sign-in challenge expired; sign in again")
	}
	return key, c, nil
}

// Send texts a sign-in code for the challenge (POST /auth/mfa/send): the
// code already sent, while it lives, so that whichever text arrives works;
// else a new one. A challenge sends at most five texts.
func (s *Service) Send(ctx context.Context, challengeID, method string) error {
	if method != gatehouse.MFAMethodSMS {
		return gatehouse.InvalidField("method", `only "sms" codes are sent`)
	}
	key, c, err := s.load(ctx, challengeID)
	if err != nil {
		return err
	}
	if c.Phone == "" {
		return gatehouse.InvalidField("method", "this account has no phone number for codes")
	}
	if s.sms == nil || !s.sms.Available() {
		return errSMSDown
	}
	n, err := s.cache.Incr(ctx, sendsKey(key), 1, c.ExpiresAt.Sub(s.now()))
	if err != nil {
		return err
	}
	if n > maxSends {
		return gatehouse.Errorf(gatehouse.CodeRateLimited, "this sign-in has sent %d codes already; sign in again", maxSends)
	}
	return s.sendCode(ctx, c.UserID, c.Phone, key)
}

// Verify meets a challenge with a code (POST /auth/mfa/verify) and answers
// the sign-in it held, its factors now ending with the second one (amr
// "otp" or "sms") and its method "mfa_<method>"; the caller starts the
// session. method may be empty: the code's shape then decides. Wrong codes
// count against the challenge, which dies at MaxAttempts.
func (s *Service) Verify(ctx context.Context, challengeID, method, code string) (gatehouse.PendingSignIn, error) {
	key, c, err := s.load(ctx, challengeID)
	if err != nil {
		return gatehouse.PendingSignIn{}, err
	}
	if method != "" && !slices.Contains(c.Methods, method) {
		return gatehouse.PendingSignIn{}, gatehouse.InvalidField("method", fmt.Sprintf("this sign-in accepts %v", c.Methods))
	}
	if method == gatehouse.MFAMethodSMS {
		if _, err := s.cache.Get(ctx, smsFailedKey(key)); err == nil || (s.sms != nil && s.sms.Failed(ctx, key)) {
			return gatehouse.PendingSignIn{}, errSMSDown
		}
	}
	// Hold the challenge while its code is checked: a concurrent attempt
	// finds it gone. So a code is never spent for a challenge that
	// concurrent wrong codes have just killed, of several valid codes only
	// one starts a session, and parallel guesses cannot exceed MaxAttempts.
	raw, err := s.cache.Take(ctx, key)
	if errors.Is(err, cache.ErrMiss) {
		return gatehouse.PendingSignIn{}, gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the sign-in challenge was already used; sign in again")
	} else if err != nil {
		return gatehouse.PendingSignIn{}, err
	}
	factors, err := s.activeFactors(ctx, c.UserID)
	var used string
	if err == nil {
		used, err = s.checkCode(ctx, c.UserID, factors, method, code, key)
		switch {
		case err == nil:
			s.opts.Metrics.MFAVerification(used, "success")
		case errors.Is(err, errInvalidCode):
			s.opts.Metrics.MFAVerification(triedMethod(factors, method, code), "failure")
		}
	}
	if err != nil {
		if errors.Is(err, errInvalidCode) {
			n, ierr := s.cache.Incr(ctx, failuresKey(key), 1, c.ExpiresAt.Sub(s.now()))
			if ierr == nil && n >= int64(s.opts.MaxAttempts) {
				return gatehouse.PendingSignIn{}, gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "too many wrong codes; sign in again")
			}
		}
		if ttl := c.ExpiresAt.Sub(s.now()); ttl > 0 {
			if serr := s.cache.Set(ctx, key, raw, ttl); serr != nil {
				return gatehouse.PendingSignIn{}, fmt.Errorf("reopen mfa challenge: %w", serr)
			}
		}
		return gatehouse.PendingSignIn{}, err
	}
	_ = s.cache.Delete(ctx, failuresKey(key), sendsKey(key))
	p := c.PendingSignIn
	p.AMR, p.Method = append(slices.Clone(p.AMR), amrOf(used)), "mfa_"+used
	return p, nil
}

// amrOf is the RFC 8176 value of a second-factor method.
func amrOf(method string) string {
	if method == gatehouse.MFAMethodSMS {
		return "sms"
	}
	return "otp" // TOTP and backup codes are both one-time passwords
}

// triedMethod names the method a wrong code was meant for, for the
// metrics: the one asked for, else what checkCode would try first that
// the user has.
func triedMethod(factors []gatehouse.MFAFactor, method, code string) string {
	if method != "" {
		return method
	}
	if len(code) != 6 || !isDigits(code) {
		return gatehouse.MFAMethodBackupCode
	}
	for _, f := range factors {
		if f.Method == gatehouse.MFAMethodTOTP {
			return gatehouse.MFAMethodTOTP
		}
	}
	return gatehouse.MFAMethodSMS
}

// checkCode spends code against the user's active factors and answers the
// method it proved. With method empty the code's shape picks: six digits
// are TOTP, then SMS; anything else a backup code. ref is what SMS codes
// were sent for.
func (s *Service) checkCode(ctx context.Context, userID string, factors []gatehouse.MFAFactor, method, code, ref string) (string, error) {
	sixDigits := len(code) == 6 && isDigits(code)
	try := []string{method}
	if method == "" {
		try = []string{gatehouse.MFAMethodBackupCode}
		if sixDigits {
			try = []string{gatehouse.MFAMethodTOTP, gatehouse.MFAMethodSMS}
		}
	}
	for _, m := range try {
		ok, err := s.spend(ctx, userID, factors, m, code, ref)
		if err != nil {
			return "", err
		}
		if ok {
			return m, nil
		}
	}
	return "", errInvalidCode
}

func (s *Service) spend(ctx context.Context, userID string, factors []gatehouse.MFAFactor, method, code, ref string) (bool, error) {
	now := s.now()
	switch method {
	case gatehouse.MFAMethodTOTP:
		for _, f := range factors {
			if f.Method != gatehouse.MFAMethodTOTP {
				continue
			}
			secret, err := s.openSecret(f)
			if err != nil {
				return false, err
			}
			if step := matchTOTP(secret, now, code); step != 0 {
				return s.store.AdvanceTOTPStep(ctx, f.ID, step)
			}
		}
	case gatehouse.MFAMethodSMS:
		_, err := s.store.ConsumeOneTimeToken(ctx, gatehouse.PurposeMFASMS, smsHash(ref, code), now)
		if err == nil {
			s.forgetCode(ctx, userID)
			return true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	case gatehouse.MFAMethodBackupCode:
		if normalizeBackupCode(code) == "" {
			return false, nil
		}
		return s.store.UseBackupCode(ctx, userID, backupHash(code), now)
	}
	return false, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// smsDown marks a challenge whose text could not even be queued (the SMS
// circuit is open): verifying it by SMS answers 503 from now on instead of
// waiting for a code that will never come, as for a text the sender gave
// up on (SMS.Failed).
func (s *Service) smsDown(ctx context.Context, ref string) {
	if err := s.cache.Set(ctx, smsFailedKey(ref), []byte("1"), s.opts.ChallengeTTL); err != nil {
		s.opts.Logger.WarnContext(ctx, "mfa: cannot record failed sms", "err", err)
	}
}
