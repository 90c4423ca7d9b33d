package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

// TagMFA groups the multi-factor operations.
const TagMFA = "MFA"

// MFA runs second factors (an *mfa.Service).
type MFA interface {
	Setup(ctx context.Context, userID, method, phone string) (mfa.SetupResult, error)
	Activate(ctx context.Context, userID, method, code string) ([]string, error)
	Send(ctx context.Context, challengeID, method string) error
	SendToSession(ctx context.Context, userID, sessionID string) error
	Verify(ctx context.Context, challengeID, method, code string) (account.Tokens, error)
	Disable(ctx context.Context, userID, sessionID string, authTime time.Time, method, code, password string) error
	RemainingBackupCodes(ctx context.Context, userID string) (int, error)
	RegenerateBackupCodes(ctx context.Context, userID, sessionID string, authTime time.Time, code, password string) ([]string, error)
}

// MFAChallenge is a sign-in's answer when the account has a second factor:
// no tokens yet, but a challenge to meet at POST /auth/mfa/verify.
type MFAChallenge struct {
	MFARequired bool     `json:"mfa_required" enum:"true"`
	ChallengeID string   `json:"challenge_id" doc:"Opaque; send it with the code. Dies after 5 wrong codes."`
	Methods     []string `json:"methods" doc:"What the code may be: totp, sms, backup_code; or email_confirmation alone: no code, the emailed link confirms the sign-in and POST /auth/mfa/verify with that method finishes it."`
	ExpiresIn   int      `json:"expires_in" doc:"Seconds until the challenge expires."`
}

// SignInResponse is a TokenResponse, or an MFAChallenge when a second
// factor is needed.
type SignInResponse struct {
	Tokens    *TokenResponse
	Challenge *MFAChallenge
}

// MarshalJSON writes whichever of the two it holds.
func (r SignInResponse) MarshalJSON() ([]byte, error) {
	if r.Challenge != nil {
		return json.Marshal(r.Challenge)
	}
	return json.Marshal(r.Tokens)
}

// Schema documents the answer as one of the two objects.
func (SignInResponse) Schema(reg huma.Registry) *huma.Schema {
	return &huma.Schema{OneOf: []*huma.Schema{
		reg.Schema(reflect.TypeFor[TokenResponse](), true, ""),
		reg.Schema(reflect.TypeFor[MFAChallenge](), true, ""),
	}}
}

type signInOutput struct {
	Body SignInResponse
}

// signInBody answers tokens, or the challenge when one was opened.
func signInBody(t account.Tokens, now time.Time) *signInOutput {
	if c := t.Challenge; c != nil {
		return &signInOutput{Body: SignInResponse{Challenge: &MFAChallenge{MFARequired: true, ChallengeID: c.ID,
			Methods: c.Methods, ExpiresIn: max(0, int(c.ExpiresAt.Sub(now).Seconds()))}}}
	}
	tb := tokenBody(t, now)
	return &signInOutput{Body: SignInResponse{Tokens: &tb}}
}

// verifyBody is what POST /auth/mfa/verify answers: a TokenResponse, or
// (202, email_confirmation) the challenge still waiting. The schema is the
// 200 answer's; the operation documents the 202 one.
// MarshalJSON comes with SignInResponse; Schema is its own.
type verifyBody struct{ SignInResponse }

// Schema documents the 200 answer.
func (verifyBody) Schema(reg huma.Registry) *huma.Schema {
	return reg.Schema(reflect.TypeFor[TokenResponse](), true, "")
}

type verifyOutput struct {
	Status int
	Body   verifyBody
}

// finishConfirmed is POST /auth/mfa/verify for a sign-in held for an
// emailed confirmation: 202 with Retry-After while it waits, then the
// tokens, once. There is no push: the client signing in has no session,
// so no WebSocket can reach it (the socket needs a user's ticket).
func (s *Server) finishConfirmed(ctx context.Context, challengeID string) (*verifyOutput, error) {
	if s.confirm == nil {
		return nil, Problem(gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the sign-in challenge is unknown or expired; sign in again"))
	}
	t, err := s.confirm.FinishConfirmedSignIn(ctx, challengeID)
	if err != nil {
		return nil, Problem(err)
	}
	out := &verifyOutput{Status: http.StatusOK, Body: verifyBody{signInBody(t, s.now()).Body}}
	if t.Challenge != nil {
		out.Status = http.StatusAccepted
		if h, ok := ctx.Value(headerKey{}).(http.Header); ok {
			h.Set("Retry-After", strconv.Itoa(int(risk.ConfirmPoll/time.Second)))
		}
	}
	return out, nil
}

type backupCodesOutput struct {
	Body struct {
		BackupCodes []string `json:"backup_codes" doc:"Ten single-use codes, shown only now."`
	}
}

func backupCodes(codes []string) *backupCodesOutput {
	out := &backupCodesOutput{}
	out.Body.BackupCodes = codes
	return out
}

type mfaSetupBody struct {
	Method      string `json:"method"`
	Secret      string `json:"secret,omitempty" doc:"Base32 TOTP secret, for manual entry."`
	OTPAuthURL  string `json:"otpauth_url,omitempty"`
	QRCode      string `json:"qr_code,omitempty" doc:"data:image/png;base64,..."`
	PhoneNumber string `json:"phone_number,omitempty"`
}

type mfaSetupOutput struct {
	Body mfaSetupBody
}

type remainingOutput struct {
	Body struct {
		Remaining int `json:"remaining"`
	}
}

// wrongCodesNote explains the wrong-code limit the signed-in MFA
// operations share.
const wrongCodesNote = "counted per account across activate, disable and backup-code regeneration; even a right code is refused until then"

// mfaProblem is Problem that also sends Retry-After when the MFA service
// says when a retry can pass (its own per-account limits).
func mfaProblem(ctx context.Context, err error) error {
	var ra *mfa.RetryAfterError
	if errors.As(err, &ra) {
		if h, ok := ctx.Value(headerKey{}).(http.Header); ok {
			h.Set("Retry-After", strconv.Itoa(max(seconds(ra.After), 1)))
		}
	}
	return Problem(err)
}

func (s *Server) registerMFA() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "mfa-setup", Method: http.MethodPost, Path: "/auth/mfa/setup", Tags: []string{TagMFA},
		Summary: "Start enrolling a second factor",
		Description: "TOTP: answers the secret, an otpauth:// URL and a QR code (PNG data URI) for an authenticator app. " +
			"SMS: texts a code to phone_number (E.164); calling it again with the same number while that code lives texts the same code again. " +
			"Nothing changes until /auth/mfa/activate proves a code. " +
			"Errors: 409 conflict when the method is already enabled, 422 validation_failed, " +
			"429 rate_limited (with Retry-After) after 5 texted codes to the account within an hour, 503 service_unavailable when texts cannot be sent.",
	}), func(ctx context.Context, in *struct {
		Body struct {
			Method      string `json:"method" enum:"totp,sms"`
			PhoneNumber string `json:"phone_number,omitempty" maxLength:"32" doc:"E.164, e.g. +14155550100; for sms."`
		}
	}) (*mfaSetupOutput, error) {
		r, err := s.mfa.Setup(ctx, mustPrincipal(ctx).UserID, in.Body.Method, in.Body.PhoneNumber)
		if err != nil {
			return nil, mfaProblem(ctx, err)
		}
		return &mfaSetupOutput{Body: mfaSetupBody{Method: r.Method, Secret: r.Secret, OTPAuthURL: r.OTPAuthURL,
			QRCode: r.QRCode, PhoneNumber: r.PhoneNumber}}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "mfa-activate", Method: http.MethodPost, Path: "/auth/mfa/activate", Tags: []string{TagMFA},
		Summary: "Turn on a second factor",
		Description: "Proves a code from the pending setup and enables the factor. Answers ten single-use backup codes, " +
			"shown only now; any earlier set stops working. Errors: 401 mfa_invalid_code, 422 validation_failed (no pending setup), " +
			"429 rate_limited (with Retry-After) after 5 wrong codes within 15 minutes (" + wrongCodesNote + ").",
	}), func(ctx context.Context, in *struct {
		Body struct {
			Method string `json:"method" enum:"totp,sms"`
			Code   string `json:"code" minLength:"1" maxLength:"32"`
		}
	}) (*backupCodesOutput, error) {
		codes, err := s.mfa.Activate(ctx, mustPrincipal(ctx).UserID, in.Body.Method, in.Body.Code)
		if err != nil {
			return nil, mfaProblem(ctx, err)
		}
		return backupCodes(codes), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "mfa-send", Method: http.MethodPost, Path: "/auth/mfa/send", Tags: []string{TagMFA},
		Summary: "Text a sign-in code",
		Description: "Sends a code by SMS for an open sign-in challenge. While the code already sent lives, the same code is texted " +
			"again, so whichever text arrives first or last works; after it expired a new code is sent. " +
			"Signed-in callers may leave challenge_id out to get a code for confirming /auth/mfa/disable or backup-code regeneration; " +
			"such codes count with /auth/mfa/setup's toward 5 texts per account per hour. " +
			"Errors: 401 mfa_invalid_code (unknown or expired challenge), 429 rate_limited (5 codes for one challenge, or the account's texts used up), 503 service_unavailable.",
		DefaultStatus: http.StatusAccepted,
		Security:      []map[string][]string{{}, {SecurityBearer: {}}},
	}, func(ctx context.Context, in *struct {
		Authorization string `header:"Authorization" doc:"Bearer token, only when challenge_id is left out."`
		Body          struct {
			ChallengeID string `json:"challenge_id,omitempty" maxLength:"256"`
			Method      string `json:"method" enum:"sms"`
		}
	}) (*acceptedOutput, error) {
		if in.Body.ChallengeID != "" {
			if err := s.mfa.Send(ctx, in.Body.ChallengeID, in.Body.Method); err != nil {
				return nil, Problem(err)
			}
			return accepted(), nil
		}
		p, err := s.authenticate(ctx, in.Authorization)
		if err != nil {
			return nil, Problem(err)
		}
		if err := s.mfa.SendToSession(ctx, p.UserID, p.SessionID); err != nil {
			return nil, mfaProblem(ctx, err)
		}
		return accepted(), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "mfa-verify", Method: http.MethodPost, Path: "/auth/mfa/verify", Tags: []string{TagMFA},
		Summary: "Meet a sign-in challenge",
		Description: "Answers tokens for a new session marked mfa, whose access token's amr adds otp (TOTP or backup code) or sms. " +
			"method may be left out: six digits are tried as TOTP then SMS, anything else as a backup code. " +
			"method email_confirmation (a challenge whose methods are [\"email_confirmation\"]: the step-up of a risky sign-in " +
			"without MFA) takes no code: the client that signed in polls until the person clicks the emailed link; it answers 202 " +
			"with the challenge and Retry-After (seconds) while the link was not clicked, then 200 with tokens, once (amr adds email). " +
			"Errors: 401 mfa_invalid_code (wrong, expired or used code; the challenge dies after 5; an unknown, expired or " +
			"already finished challenge), 422 validation_failed (no code for a method that needs one), " +
			"503 service_unavailable when the SMS could not be delivered.",
		Responses: map[string]*huma.Response{
			"202": {
				Description: "email_confirmation only: the emailed link was not clicked yet; ask again after Retry-After seconds.",
				Headers:     map[string]*huma.Param{"Retry-After": {Description: "Seconds to wait before polling again.", Schema: &huma.Schema{Type: huma.TypeInteger}}},
				Content: map[string]*huma.MediaType{"application/json": {
					Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[MFAChallenge](), true, "")}},
			},
		},
	}, func(ctx context.Context, in *struct {
		Body struct {
			ChallengeID string `json:"challenge_id" minLength:"1" maxLength:"256"`
			Code        string `json:"code,omitempty" minLength:"1" maxLength:"32" doc:"Required, except for email_confirmation."`
			Method      string `json:"method,omitempty" enum:"totp,sms,backup_code,email_confirmation"`
		}
	}) (*verifyOutput, error) {
		if in.Body.Method == risk.MethodEmailConfirmation {
			return s.finishConfirmed(ctx, in.Body.ChallengeID)
		}
		if in.Body.Code == "" {
			return nil, Problem(gatehouse.InvalidField("body.code", "code is required for method "+cmp.Or(in.Body.Method, "totp, sms or backup_code")))
		}
		t, err := s.mfa.Verify(ctx, in.Body.ChallengeID, in.Body.Method, in.Body.Code)
		if err != nil {
			return nil, Problem(err)
		}
		return &verifyOutput{Status: http.StatusOK, Body: verifyBody{signInBody(t, s.now()).Body}}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "mfa-disable", Method: http.MethodPost, Path: "/auth/mfa/disable", Tags: []string{TagMFA},
		Summary: "Turn off a second factor",
		Description: "Needs recent authentication (signed in within 5 minutes, or password in the body) and a valid code " +
			"(TOTP, an SMS code from /auth/mfa/send, or a backup code). Removing the last factor deletes the backup codes. " +
			"Errors: 403 recent_auth_required, 401 mfa_invalid_code, 404 not_found when the method is not enabled, " +
			"429 rate_limited (with Retry-After) after 5 wrong codes within 15 minutes (" + wrongCodesNote + ").",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		Body struct {
			Method   string `json:"method" enum:"totp,sms"`
			Code     string `json:"code" minLength:"1" maxLength:"32"`
			Password string `json:"password,omitempty" maxLength:"1024"`
		}
	}) (*noContent, error) {
		p := mustPrincipal(ctx)
		if err := s.mfa.Disable(ctx, p.UserID, p.SessionID, p.AuthTime, in.Body.Method, in.Body.Code, in.Body.Password); err != nil {
			return nil, mfaProblem(ctx, err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "mfa-backup-codes-remaining", Method: http.MethodGet, Path: "/auth/mfa/backup-codes", Tags: []string{TagMFA},
		Summary: "Count my unused backup codes",
	}), func(ctx context.Context, _ *struct{}) (*remainingOutput, error) {
		n, err := s.mfa.RemainingBackupCodes(ctx, mustPrincipal(ctx).UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &remainingOutput{}
		out.Body.Remaining = n
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "mfa-backup-codes-regenerate", Method: http.MethodPost, Path: "/auth/mfa/backup-codes", Tags: []string{TagMFA},
		Summary: "Replace my backup codes",
		Description: "Needs recent authentication (or password) and a valid code; the old codes stop working. " +
			"Errors: 403 recent_auth_required, 401 mfa_invalid_code, 409 conflict when MFA is off, " +
			"429 rate_limited (with Retry-After) after 5 wrong codes within 15 minutes (" + wrongCodesNote + ").",
	}), func(ctx context.Context, in *struct {
		Body struct {
			Code     string `json:"code" minLength:"1" maxLength:"32"`
			Password string `json:"password,omitempty" maxLength:"1024"`
		}
	}) (*backupCodesOutput, error) {
		p := mustPrincipal(ctx)
		codes, err := s.mfa.RegenerateBackupCodes(ctx, p.UserID, p.SessionID, p.AuthTime, in.Body.Code, in.Body.Password)
		if err != nil {
			return nil, mfaProblem(ctx, err)
		}
		return backupCodes(codes), nil
	})
}
