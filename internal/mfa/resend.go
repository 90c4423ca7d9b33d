package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// A resend within a code's life texts the same code again, as Twilio
// Verify does: texts can arrive in any order, and whichever arrives last
// must not be the one that fails. So the live code is kept recoverable
// until it expires, sealed under the master key in the cache (liveCode).
// The database still holds only its hash, and only one SMS code per user
// is live there (sendCodeTx supersedes the others), so one cache entry per
// user mirrors it: the code, what it was sent for (ref) and when it
// expires. Losing the entry costs only that the next resend makes a new
// code.

// liveCode is what the cache keeps, sealed, of the user's live SMS code.
type liveCode struct {
	Ref       string    `json:"ref"`
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

func liveCodeKey(userID string) string { return "mfa:sms-code:" + userID }

// liveCodeAD binds the sealed entry to its user, so an entry copied to
// another user's key does not open.
func liveCodeAD(userID string) []byte { return []byte("mfa-sms-code:" + userID) }

// currentCode answers the user's live code for ref, if the cache still
// has one that has not expired.
func (s *Service) currentCode(ctx context.Context, userID, ref string) (liveCode, bool) {
	sealed, err := s.cache.Get(ctx, liveCodeKey(userID))
	if err != nil {
		return liveCode{}, false
	}
	raw, err := s.box.Open(sealed, liveCodeAD(userID))
	if err != nil {
		return liveCode{}, false
	}
	var c liveCode
	if json.Unmarshal(raw, &c) != nil || c.Ref != ref || !s.now().Before(c.ExpiresAt) {
		return liveCode{}, false
	}
	return c, true
}

// keepCode records c as the user's live code until it expires.
func (s *Service) keepCode(ctx context.Context, userID string, c liveCode) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.cache.Set(ctx, liveCodeKey(userID), s.box.Seal(raw, liveCodeAD(userID)), c.ExpiresAt.Sub(s.now())); err != nil {
		return fmt.Errorf("keep sms code: %w", err)
	}
	return nil
}

// forgetCode drops the user's live code: it was spent, or the transaction
// that stored it failed.
func (s *Service) forgetCode(ctx context.Context, userID string) {
	if err := s.cache.Delete(ctx, liveCodeKey(userID)); err != nil {
		s.opts.Logger.WarnContext(ctx, "mfa: cannot forget sms code", "err", err)
	}
}

// sendCode texts ref's code in its own transaction (see sendCodeTx).
func (s *Service) sendCode(ctx context.Context, userID, phone, ref string) error {
	if s.sms == nil || !s.sms.Available() {
		return errSMSDown
	}
	kept := false
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		s.retrying(ctx, userID, &kept)
		// The user's lock orders concurrent sends: the second sees the
		// code the first kept, instead of superseding it with its own.
		if _, err := tx.GetUserForUpdate(ctx, userID); err != nil {
			return err
		}
		var err error
		kept, err = s.sendCodeTx(ctx, tx, userID, phone, ref)
		return err
	})
	if err != nil && kept {
		s.forgetCode(ctx, userID) // its row rolled back
	}
	return err
}

// retrying is called at the start of each run of a transaction that may
// keep a code: when an earlier run kept one, that run rolled back (InTx
// runs a transaction again after a serialization failure), so its code
// has no row and must not be sent again.
func (s *Service) retrying(ctx context.Context, userID string, kept *bool) {
	if *kept {
		s.forgetCode(ctx, userID)
		*kept = false
	}
}

// sendCodeTx texts the code for ref, inside tx, which holds the user's row
// lock. While the code last sent for ref lives, the same code goes out
// again (with the minutes it has left); otherwise a new code is stored
// (hashed, bound to ref, superseding the user's earlier SMS codes) and
// kept for resends; kept reports that, so a caller whose transaction then
// fails can forget it.
func (s *Service) sendCodeTx(ctx context.Context, tx store.Tx, userID, phone, ref string) (kept bool, err error) {
	c, ok := s.currentCode(ctx, userID, ref)
	if !ok {
		if c, err = s.newCodeTx(ctx, tx, userID, ref); err != nil {
			return false, err
		}
		if err := s.keepCode(ctx, userID, c); err != nil {
			return false, err
		}
	}
	minutes := int(math.Ceil(c.ExpiresAt.Sub(s.now()).Minutes()))
	body := fmt.Sprintf("%s is your %s verification code. It expires in %d minutes. Do not share it.",
		c.Code, s.opts.Issuer, max(minutes, 1))
	return !ok, s.sms.EnqueueTx(ctx, tx, phone, body, ref)
}

// newCodeTx stores a fresh code for ref, superseding the user's earlier
// SMS codes.
func (s *Service) newCodeTx(ctx context.Context, tx store.Tx, userID, ref string) (liveCode, error) {
	now := s.now()
	if err := tx.SupersedeOneTimeTokens(ctx, userID, gatehouse.PurposeMFASMS, now); err != nil {
		return liveCode{}, err
	}
	for {
		c := liveCode{Ref: ref, Code: newSMSCode(), ExpiresAt: now.Add(s.opts.CodeTTL)}
		err := tx.CreateOneTimeToken(ctx, gatehouse.OneTimeToken{ID: gatehouse.NewID(), UserID: userID, Purpose: gatehouse.PurposeMFASMS,
			Hash: smsHash(ref, c.Code), CreatedAt: now, ExpiresAt: c.ExpiresAt})
		if errors.Is(err, store.ErrConflict) {
			continue // the same six digits for the same ref earlier: pick again
		}
		return c, err
	}
}
