package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// The codes only the transport answers: the request could not be taken as
// an operation's input at all. Services never see these requests.
const (
	CodeMalformedJSON    gatehouse.Code = "malformed_json"
	CodeMethodNotAllowed gatehouse.Code = "method_not_allowed"
	CodePayloadTooLarge  gatehouse.Code = "payload_too_large"
	CodeUnsupportedMedia gatehouse.Code = "unsupported_media_type"
)

// statusByCode is the one place a domain error code becomes an HTTP status.
// A code missing here answers 500, so adding a code to the domain without
// adding it here is loud rather than silently wrong.
var statusByCode = map[gatehouse.Code]int{
	gatehouse.CodeInvalidToken:        http.StatusBadRequest,
	gatehouse.CodeUnauthorized:        http.StatusUnauthorized,
	gatehouse.CodeInvalidCredentials:  http.StatusUnauthorized,
	gatehouse.CodeInvalidRefreshToken: http.StatusUnauthorized,
	gatehouse.CodeRefreshTokenReused:  http.StatusUnauthorized,
	gatehouse.CodeMFAInvalidCode:      http.StatusUnauthorized,
	gatehouse.CodePermissionDenied:    http.StatusForbidden,
	gatehouse.CodeAccessDenied:        http.StatusForbidden,
	gatehouse.CodeRecentAuthRequired:  http.StatusForbidden,
	gatehouse.CodeNotFound:            http.StatusNotFound,
	gatehouse.CodeEmailTaken:          http.StatusConflict,
	gatehouse.CodeSystemRole:          http.StatusConflict,
	gatehouse.CodeLastLoginMethod:     http.StatusConflict,
	gatehouse.CodeConflict:            http.StatusConflict,
	gatehouse.CodeValidationFailed:    http.StatusUnprocessableEntity,
	gatehouse.CodeInvalidEmail:        http.StatusUnprocessableEntity,
	gatehouse.CodeWeakPassword:        http.StatusUnprocessableEntity,
	gatehouse.CodeAccountLocked:       http.StatusLocked,
	gatehouse.CodeRateLimited:         http.StatusTooManyRequests,
	gatehouse.CodeBadRequest:          http.StatusBadRequest,
	CodeMalformedJSON:                 http.StatusBadRequest,
	CodeMethodNotAllowed:              http.StatusMethodNotAllowed,
	CodePayloadTooLarge:               http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:              http.StatusUnsupportedMediaType,
	gatehouse.CodeUnavailable:         http.StatusServiceUnavailable,
	gatehouse.CodeInternal:            http.StatusInternalServerError,

	// Social login.
	gatehouse.CodeOAuthDenied:          http.StatusBadRequest,
	gatehouse.CodeOAuthProviderError:   http.StatusBadGateway,
	gatehouse.CodeOAuthEmailUnverified: http.StatusConflict,
}

// HTTPStatus returns the HTTP status for a domain error code; unknown codes
// answer 500.
func HTTPStatus(code gatehouse.Code) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeForStatus picks the code of an error that arrives with only a status:
// the ones Huma and net/http make themselves (validation, bad bodies,
// unknown routes). Domain errors never go through here.
func codeForStatus(status int) gatehouse.Code {
	switch status {
	case http.StatusUnauthorized:
		return gatehouse.CodeUnauthorized
	case http.StatusForbidden:
		return gatehouse.CodePermissionDenied
	case http.StatusNotFound:
		return gatehouse.CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return gatehouse.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMedia
	case http.StatusUnprocessableEntity:
		return gatehouse.CodeValidationFailed
	case http.StatusLocked:
		return gatehouse.CodeAccountLocked
	case http.StatusTooManyRequests:
		return gatehouse.CodeRateLimited
	case http.StatusServiceUnavailable:
		return gatehouse.CodeUnavailable
	}
	if status >= 500 {
		return gatehouse.CodeInternal
	}
	return gatehouse.CodeBadRequest // 400 and the 4xx without a code of their own (406, 408 ...)
}

// problemContentType is the media type of every error body (RFC 9457).
const problemContentType = "application/problem+json"

// ProblemDetails is the body of every error answer: RFC 9457 problem
// details plus the stable machine code and, for invalid input, one entry
// per offending field. It implements huma.StatusError, so an operation
// handler may return it (or anything Problem returns) as its error.
type ProblemDetails struct {
	Type   string                 `json:"type" doc:"A URI reference identifying the problem type; about:blank means the status and code say it all." example:"about:blank"`
	Title  string                 `json:"title" doc:"Short summary of the HTTP status." example:"Unprocessable Entity"`
	Status int                    `json:"status" doc:"The HTTP status code." example:"422"`
	Detail string                 `json:"detail" doc:"Human-readable explanation of this occurrence." example:"validation failed"`
	Code   gatehouse.Code         `json:"code" doc:"Stable machine-readable error code; branch on this, not on detail." example:"validation_failed"`
	Errors []gatehouse.FieldError `json:"errors,omitempty" nullable:"false" doc:"The offending inputs, for validation errors."`

	// cause is logged with the request id, never shown.
	cause error
	// internal marks an unexpected failure: its detail is replaced with a
	// generic one naming the request id when the answer is written.
	internal bool
	// logged means the cause was logged already (a panic, with its stack).
	logged bool
	// clientGone marks a failure that came from the request's context
	// being cancelled; finalize checks that the client really went away.
	clientGone bool
}

// StatusClientClosedRequest is the status recorded (in the access log and
// the metrics) for a request whose client went away before the answer:
// nobody reads it, and it is not a server error. The number is nginx's.
const StatusClientClosedRequest = 499

// retryAfterUnavailable is the Retry-After of a 503 that did not set its
// own: long enough for a connection pool to recover or a failover to
// finish, short enough that a client's retry is not a new sign-in.
const retryAfterUnavailable = "5"

var (
	_ huma.StatusError       = (*ProblemDetails)(nil)
	_ huma.ContentTypeFilter = (*ProblemDetails)(nil)
	_ huma.SchemaTransformer = (*ProblemDetails)(nil)
)

// Error implements error.
func (p *ProblemDetails) Error() string {
	if p.cause != nil {
		return fmt.Sprintf("%s: %s: %v", p.Code, p.Detail, p.cause)
	}
	return fmt.Sprintf("%s: %s", p.Code, p.Detail)
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (p *ProblemDetails) Unwrap() error { return p.cause }

// GetStatus implements huma.StatusError.
func (p *ProblemDetails) GetStatus() int { return p.Status }

// ContentType implements huma.ContentTypeFilter: errors are problem+json.
func (p *ProblemDetails) ContentType(ct string) string {
	if ct == "application/json" || ct == "" {
		return problemContentType
	}
	return ct
}

// TransformSchema lists every code in the documented schema, from the same
// table the answers use, and leaves the object open: RFC 9457 lets a
// problem carry extension members, so a client validating answers must
// not refuse one that gains a member (Huma closes struct schemas).
func (p *ProblemDetails) TransformSchema(_ huma.Registry, s *huma.Schema) *huma.Schema {
	s.AdditionalProperties = true
	if c := s.Properties["code"]; c != nil {
		codes := make([]string, 0, len(statusByCode))
		for code := range statusByCode {
			codes = append(codes, string(code))
		}
		slices.Sort(codes)
		c.Enum = make([]any, len(codes))
		for i, code := range codes {
			c.Enum[i] = code
		}
	}
	return s
}

// Problem turns any error into the error an operation handler returns, so
// the client gets the right status and problem+json body:
//
//   - a *gatehouse.Error (anywhere in the chain) answers the status of its
//     code, its client-safe Message as detail and its Fields as errors;
//   - a request body over the size limit answers 413 payload_too_large;
//   - anything else answers 500 internal_error whose detail only names the
//     request id, while the cause is logged with that id.
//
// Returning a *gatehouse.Error from a Huma handler without calling Problem
// works too (see the huma.NewError override in this file); Problem is for
// clarity and for plain net/http handlers. Problem(nil) is nil.
func Problem(err error) error {
	if err == nil {
		return nil
	}
	return problemFrom(err)
}

func problemFrom(err error) *ProblemDetails {
	var p *ProblemDetails
	if errors.As(err, &p) {
		return p
	}
	var ge *gatehouse.Error
	hasDomainErr := errors.As(err, &ge)
	if (!hasDomainErr || ge.Code != gatehouse.CodeUnavailable) &&
		(errors.Is(err, gatehouse.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
		// The database, the cache or a provider failed or ran out of
		// time: nothing is wrong with the request, so it may be retried.
		p := newProblem(http.StatusServiceUnavailable, "the service is temporarily unavailable; try again in a few seconds")
		p.cause = err
		return p
	}
	if errors.Is(err, context.Canceled) {
		// Only the request's own context is ever cancelled under a
		// handler: the client went away (finalize checks).
		return &ProblemDetails{
			Type: "about:blank", Title: "Client Closed Request", Status: StatusClientClosedRequest,
			Detail: "the client closed the request", Code: gatehouse.CodeBadRequest, cause: err, clientGone: true,
		}
	}
	if hasDomainErr {
		status, known := statusByCode[ge.Code]
		if !known || ge.Code == gatehouse.CodeInternal {
			return internalProblem(err)
		}
		detail := ge.Message
		if detail == "" {
			detail = strings.ReplaceAll(string(ge.Code), "_", " ")
		}
		return &ProblemDetails{
			Type:   "about:blank",
			Title:  http.StatusText(status),
			Status: status,
			Detail: detail,
			Code:   ge.Code,
			Errors: ge.Fields,
			cause:  ge.Err,
		}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return tooLargeProblem(tooLarge.Limit)
	}
	var se huma.StatusError
	if errors.As(err, &se) {
		// A huma.ErrorModel or similar built by hand: keep its status, but
		// never show the text of an unexpected failure.
		if s := se.GetStatus(); (s >= 400 && s < 500) || s == http.StatusServiceUnavailable {
			return newProblem(s, se.Error())
		}
	}
	return internalProblem(err)
}

func newProblem(status int, detail string) *ProblemDetails {
	code := codeForStatus(status)
	if detail == "" {
		detail = strings.ToLower(http.StatusText(status))
	}
	return &ProblemDetails{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

func internalProblem(cause error) *ProblemDetails {
	return &ProblemDetails{
		Type:     "about:blank",
		Title:    http.StatusText(http.StatusInternalServerError),
		Status:   http.StatusInternalServerError,
		Detail:   "internal error",
		Code:     gatehouse.CodeInternal,
		cause:    cause,
		internal: true,
	}
}

func tooLargeProblem(limit int64) *ProblemDetails {
	return newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is too large (limit %d bytes)", limit))
}

// Huma builds every error it answers by itself (validation, unreadable
// bodies, wrong content types) through huma.NewError, and wraps errors
// returned by handlers that are not huma.StatusErrors with it too. Pointing
// it at newHumaError makes all of them our problem+json with a code. It is
// a package variable of Huma, so this is process-wide; httpapi is the only
// package that uses Huma.
func init() {
	huma.NewError = newHumaError
}

// humaUnexpected is the message Huma passes when a handler returned an
// error that is not a huma.StatusError.
const humaUnexpected = "unexpected error occurred"

func newHumaError(status int, msg string, errs ...error) huma.StatusError {
	errs = slices.DeleteFunc(slices.Clone(errs), func(e error) bool { return e == nil })
	for _, e := range errs {
		var tooLarge *http.MaxBytesError
		if errors.As(e, &tooLarge) {
			return tooLargeProblem(tooLarge.Limit)
		}
	}
	if msg == humaUnexpected && len(errs) == 1 {
		// A handler's own error: a domain error, or an unexpected one.
		return problemFrom(errs[0])
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		cause := errors.New(msg)
		if len(errs) > 0 {
			cause = fmt.Errorf("%s: %w", msg, errors.Join(errs...))
		}
		return internalProblem(cause)
	}

	p := newProblem(status, msg)
	if msg == "validation failed" {
		// Huma says "validation failed" for every body problem; say which.
		switch status {
		case http.StatusBadRequest:
			p.Code = CodeMalformedJSON
			p.Detail = "request body is not valid JSON"
		case http.StatusUnsupportedMediaType:
			p.Detail = "unsupported content type; send application/json"
		}
	}
	for _, e := range errs {
		p.Errors = append(p.Errors, fieldErrors(e)...)
	}
	return p
}

// fieldErrors converts one of Huma's error details into ours. The offending
// value is dropped on purpose: it may be a password.
func fieldErrors(err error) []gatehouse.FieldError {
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		if len(ge.Fields) > 0 {
			return ge.Fields
		}
		return []gatehouse.FieldError{{Message: ge.Message}}
	}
	var d huma.ErrorDetailer
	if errors.As(err, &d) {
		detail := d.ErrorDetail()
		loc, msg := detail.Location, detail.Message
		// Huma reports a missing property at its parent ("body"); name the
		// property itself ("body.email") so clients can point at the field.
		if rest, ok := strings.CutPrefix(msg, "expected required property "); ok {
			if name, ok := strings.CutSuffix(rest, " to be present"); ok {
				if loc == "" {
					loc = name
				} else {
					loc += "." + name
				}
			}
		}
		return []gatehouse.FieldError{{Location: loc, Message: msg}}
	}
	return []gatehouse.FieldError{{Message: err.Error()}}
}

// finalize prepares a problem for one answer: an internal error gets the
// generic detail naming the request id, and its cause is logged with the
// request's logger. It returns a copy, so a problem value shared between
// requests is never mutated.
func finalize(ctx context.Context, p *ProblemDetails) *ProblemDetails {
	out := *p
	log := telemetry.Logger(ctx)
	switch {
	case out.internal:
		out.Detail = "internal error"
		if id := telemetry.RequestID(ctx); id != "" {
			out.Detail = "internal error; request id " + id
		}
		out.Errors = nil
		if !p.logged {
			cause := p.cause
			if cause == nil {
				cause = errors.New(p.Detail)
			}
			log.LogAttrs(ctx, slog.LevelError, "internal error", slog.String("error", cause.Error()))
		}
	case out.clientGone && ctx.Err() != nil:
		log.LogAttrs(ctx, slog.LevelDebug, "client went away", slog.String("error", out.cause.Error()))
	case out.clientGone:
		// A cancelled context under a request whose client is still there:
		// something cancelled what it should not have. Loud, because it is
		// the shape of the cascade of issue #14.
		log.LogAttrs(ctx, slog.LevelError, "request failed with a cancelled context while its client is connected",
			slog.String("error", out.cause.Error()))
	case out.Status >= 500:
		cause := "no cause recorded"
		if out.cause != nil {
			cause = out.cause.Error()
		}
		// Overload and outages repeat per request: sampled per code.
		log.LogAttrs(ctx, slog.LevelWarn, "request failed", slog.String("code", string(out.Code)),
			slog.String("error", cause), telemetry.Sample(string(out.Code)))
	case out.cause != nil:
		log.LogAttrs(ctx, slog.LevelDebug, "request rejected", slog.String("code", string(out.Code)),
			slog.String("error", out.cause.Error()))
	}
	return &out
}

// transformProblems is the Huma transformer that finalizes every problem
// Huma writes.
func transformProblems(ctx huma.Context, _ string, v any) (any, error) {
	if p, ok := v.(*ProblemDetails); ok {
		if p.Status == http.StatusServiceUnavailable {
			if _, w := humago.Unwrap(ctx); w.Header().Get("Retry-After") == "" {
				w.Header().Set("Retry-After", retryAfterUnavailable)
			}
		}
		out := finalize(ctx.Context(), p)
		out.Errors = locate(ctx.Operation(), out.Errors)
		return out, nil
	}
	return v, nil
}

// requestPlaces are the parts of a request a field location may name
// first, in Huma's convention.
var requestPlaces = []string{"body", "query", "path", "header", "cookie"}

// locate says where each field a service named plainly was sent.
// Services name inputs as the client spelled them ("password",
// "events[2]"); only here is it known which part of the request carried
// them: a parameter of op with that name, or else the body. Locations that
// name their place already (Huma's own) are kept. fields is not modified:
// it may belong to an error value shared between requests.
func locate(op *huma.Operation, fields []gatehouse.FieldError) []gatehouse.FieldError {
	if len(fields) == 0 {
		return fields
	}
	out := slices.Clone(fields)
	for i, f := range out {
		name, _, _ := strings.Cut(f.Location, ".")
		name, _, _ = strings.Cut(name, "[")
		if name == "" || slices.Contains(requestPlaces, name) {
			continue
		}
		place := "body"
		if op != nil {
			for _, param := range op.Parameters {
				if param.Name == name {
					place = param.In
					break
				}
			}
		}
		out[i].Location = place + "." + f.Location
	}
	return out
}

// WriteProblem writes err as a problem+json answer from a plain net/http
// handler (one not registered through Huma), mapped like Problem.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, problemFrom(err))
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *ProblemDetails) {
	out := finalize(r.Context(), p)
	out.Errors = locate(nil, out.Errors)
	body, err := json.Marshal(out)
	if err != nil { // cannot happen: only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"internal error","code":"internal_error"}`)
	}
	h := w.Header()
	if out.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfterUnavailable)
	}
	h.Set("Content-Type", problemContentType)
	h.Del("Content-Length")
	w.WriteHeader(out.Status)
	_, _ = w.Write(append(body, '\n'))
}
