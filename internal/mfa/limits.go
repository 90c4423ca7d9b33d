package mfa

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// Per-user limits on what a signed-in caller can do outside a sign-in
// challenge (which has limits of its own). The API rate limits are per
// client address and far wider; these bound what one account costs in
// texts and how many codes it can guess, from any number of addresses.
const (
	// maxTexts codes texted per user per textWindow, by setup and to a
	// session together.
	maxTexts   = 5
	textWindow = time.Hour
	// maxWrongCodes wrong codes per user per wrongCodeWindow, by
	// activation, disable and backup-code regeneration together; after
	// that even a right code is refused until the window ends.
	maxWrongCodes   = 5
	wrongCodeWindow = 15 * time.Minute
)

func textsKey(userID string) string      { return "mfa:texts:" + userID }
func wrongCodesKey(userID string) string { return "mfa:wrong-codes:" + userID }

// RetryAfterError is the cause of the rate_limited errors the service
// answers: how long until a retry can pass. The HTTP layer sends it as
// Retry-After.
type RetryAfterError struct {
	After time.Duration
}

// Error implements error.
func (e *RetryAfterError) Error() string { return "retry after " + e.After.String() }

// limited is the rate_limited error of a fixed window counted at key: a
// retry passes when the key expires.
func (s *Service) limited(ctx context.Context, key string, window time.Duration, what string) error {
	retry, err := s.cache.TTL(ctx, key)
	if err != nil || retry <= 0 || retry > window {
		retry = window
	}
	minutes := int(math.Ceil(retry.Minutes()))
	return &gatehouse.Error{
		Code:    gatehouse.CodeRateLimited,
		Message: fmt.Sprintf("%s; try again in %d minutes", what, minutes),
		Err:     &RetryAfterError{After: retry},
	}
}

// countText spends one of the user's texts, before the text is queued.
func (s *Service) countText(ctx context.Context, userID string) error {
	key := textsKey(userID)
	n, err := s.cache.Incr(ctx, key, 1, textWindow)
	if err != nil {
		return fmt.Errorf("count mfa texts: %w", err)
	}
	if n > maxTexts {
		return s.limited(ctx, key, textWindow, fmt.Sprintf("%d codes were texted to this account within an hour", maxTexts))
	}
	return nil
}

// limitWrongCodes runs check, which proves a code outside a sign-in
// challenge, under the user's wrong-code limit. The attempt is counted
// before check runs, so parallel guesses cannot get past the limit; it is
// given back when check fails for another reason than a wrong code, and a
// right code clears the count.
func (s *Service) limitWrongCodes(ctx context.Context, userID string, check func() error) error {
	key := wrongCodesKey(userID)
	n, err := s.cache.Incr(ctx, key, 1, wrongCodeWindow)
	if err != nil {
		return fmt.Errorf("count mfa code attempts: %w", err)
	}
	if n > maxWrongCodes {
		return s.limited(ctx, key, wrongCodeWindow, "too many wrong codes")
	}
	err = check()
	switch {
	case err == nil:
		if derr := s.cache.Delete(ctx, key); derr != nil {
			s.opts.Logger.WarnContext(ctx, "mfa: cannot reset wrong-code count", "err", derr)
		}
	case !errors.Is(err, errInvalidCode):
		if _, derr := s.cache.Incr(ctx, key, -1, wrongCodeWindow); derr != nil {
			s.opts.Logger.WarnContext(ctx, "mfa: cannot give back code attempt", "err", derr)
		}
	}
	return err
}

// checkCodeLimited is checkCode (any method) under the user's wrong-code
// limit.
func (s *Service) checkCodeLimited(ctx context.Context, userID string, factors []gatehouse.MFAFactor, code, ref string) error {
	return s.limitWrongCodes(ctx, userID, func() error {
		_, err := s.checkCode(ctx, userID, factors, "", code, ref)
		return err
	})
}
