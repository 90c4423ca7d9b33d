package gatehouse

import (
	"errors"
	"fmt"
)

// Code is a stable, snake_case machine code carried by every domain error.
// Clients branch on it; it never changes once published.
type Code string

// The error codes services answer with: those of the HTTP contract
// (API.md) plus the generic ones. The codes only the transport can give (a
// body that is not JSON, a wrong method or media type) belong to httpapi.
const (
	CodeInvalidToken        Code = "invalid_token"
	CodeUnauthorized        Code = "unauthorized"
	CodeInvalidCredentials  Code = "invalid_credentials"
	CodeInvalidRefreshToken Code = "invalid_refresh_token"
	CodeRefreshTokenReused  Code = "refresh_token_reused"
	CodeMFAInvalidCode      Code = "mfa_invalid_code"
	CodePermissionDenied    Code = "permission_denied"
	CodeRecentAuthRequired  Code = "recent_auth_required"
	CodeNotFound            Code = "not_found"
	CodeEmailTaken          Code = "email_taken"
	CodeSystemRole          Code = "system_role"
	CodeLastLoginMethod     Code = "last_login_method"
	CodeValidationFailed    Code = "validation_failed"
	// CodeInvalidEmail refuses an email address that is malformed, or
	// that could pass for another one (invisible characters, mixed
	// scripts, look-alike letters); see ParseEmail.
	CodeInvalidEmail  Code = "invalid_email"
	CodeWeakPassword  Code = "weak_password"
	CodeAccountLocked Code = "account_locked"
	CodeRateLimited   Code = "rate_limited"
	// CodeAccessDenied refuses a sign-in from an address the operator
	// blocked (GATEHOUSE_IP_BLOCKLIST with GATEHOUSE_IP_BLOCKLIST_ACTION=deny),
	// whatever the credentials.
	CodeAccessDenied Code = "access_denied"
	// Social login (API.md "OAuth"): the person or the provider refused
	// the sign-in; the state is unknown, used, expired or from another
	// flow; the provider failed or answered something that does not
	// verify; the provider's email matches an account but is unverified.
	CodeOAuthDenied          Code = "oauth_denied"
	CodeOAuthProviderError   Code = "oauth_provider_error"
	CodeOAuthEmailUnverified Code = "oauth_email_not_verified"

	CodeBadRequest  Code = "bad_request"
	CodeConflict    Code = "conflict"
	CodeUnavailable Code = "service_unavailable"
	CodeInternal    Code = "internal_error"
)

// FieldError names one invalid input and what is wrong with it.
//
// Services name the input plainly, as the client spelled it: "password",
// "events[2]", "notification_preferences.security.new_device". The HTTP
// layer says where it was sent, in Huma's convention ("body.password",
// "query.redirect_uri", "path.id"); a Location that already starts with
// one of those places is left as it is.
type FieldError struct {
	Location string `json:"location"`
	Message  string `json:"message"`
}

// Error is a domain error: a stable Code, a human message safe to show to
// the client, optional per-field details, and an optional wrapped cause that
// is logged but never shown.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap exposes the cause for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an Error with a formatted client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError makes an Error that keeps cause for the log.
func WrapError(code Code, cause error, message string) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// InvalidField makes a validation_failed error naming one field.
func InvalidField(location, message string) *Error {
	return &Error{
		Code:    CodeValidationFailed,
		Message: message,
		Fields:  []FieldError{{Location: location, Message: message}},
	}
}

// ErrorCode returns the Code of the first *Error in err's chain, or
// CodeInternal when there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrUnavailable marks a failure of a dependency (the database, the cache,
// a provider) that says nothing about the request: the connection was
// refused or lost, a connect, pool wait or statement timed out, or the
// server was shutting down. The same request may well succeed a moment
// later, so the HTTP layer answers it 503 service_unavailable with
// Retry-After rather than 500. Infrastructure packages wrap their causes
// with it (errors.Is(err, ErrUnavailable) holds, the cause stays in the
// chain for the log).
var ErrUnavailable = errors.New("a dependency is unavailable")

// Unavailable wraps cause so that errors.Is(err, ErrUnavailable) holds
// while errors.As still reaches cause. Nil stays nil.
func Unavailable(cause error) error {
	if cause == nil {
		return nil
	}
	return &unavailableError{cause: cause}
}

type unavailableError struct{ cause error }

func (e *unavailableError) Error() string   { return e.cause.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }
