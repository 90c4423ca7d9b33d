package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// DefaultTwilioTimeout bounds one call to Twilio, connection included.
const DefaultTwilioTimeout = 10 * time.Second

// Twilio sends messages through the Twilio Messaging REST API:
// POST {api}/2010-04-01/Accounts/{sid}/Messages.json with the form fields
// To, From and Body, authenticated with HTTP basic auth (sid:token).
type Twilio struct {
	endpoint   string
	sid, token string
	from       string
	client     *http.Client
}

var _ Sender = (*Twilio)(nil)

// NewTwilio returns a sender for the account sid with its auth token,
// sending from the number (or messaging service sender) from. apiURL is
// the API's base URL (https://api.twilio.com in production). timeout
// bounds each call; zero means DefaultTwilioTimeout.
func NewTwilio(apiURL, sid, token, from string, timeout time.Duration) (*Twilio, error) {
	u, err := url.Parse(strings.TrimRight(apiURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("sms: twilio API URL %q is not an http(s) URL", apiURL)
	}
	if sid == "" || token == "" || from == "" {
		return nil, errors.New("sms: twilio needs an account SID, an auth token and a From number")
	}
	if timeout <= 0 {
		timeout = DefaultTwilioTimeout
	}
	return &Twilio{
		endpoint: u.String() + "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Messages.json",
		sid:      sid, token: token, from: from,
		client: &http.Client{
			Timeout:   timeout,
			Transport: telemetry.Transport(nil), // trace context out, a client span
			// Twilio does not redirect; never carry credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// TwilioError is Twilio's answer to a message it did not accept.
type TwilioError struct {
	// Status is the HTTP status code.
	Status int
	// Code is Twilio's error code (https://www.twilio.com/docs/errors), 0
	// when the answer was not Twilio's JSON.
	Code int
	// Message is Twilio's explanation, with the body and token removed
	// should Twilio ever echo them.
	Message string
}

// Error names the status, Twilio's code and message.
func (e *TwilioError) Error() string {
	s := fmt.Sprintf("twilio: HTTP %d", e.Status)
	if e.Code != 0 {
		s += fmt.Sprintf(", code %d", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes a TwilioError match ErrPermanent when retrying cannot help: a
// 4xx answer about the message itself (invalid or unsubscribed number).
// Not 401, 403 or 404 (credentials or account SID: configuration that an
// operator fixes, and a sign the provider is unusable), and not 408 or 429
// (transient).
func (e *TwilioError) Is(target error) bool {
	if target != ErrPermanent || e.Status < 400 || e.Status > 499 {
		return false
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return true
}

// Send posts the message to Twilio. A 2xx answer is success; any other is a
// *TwilioError; a network failure or timeout is returned wrapped.
func (t *Twilio) Send(ctx context.Context, to, body string) error {
	form := url.Values{"To": {to}, "From": {t.from}, "Body": {body}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	req.SetBasicAuth(t.sid, t.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: send: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &TwilioError{Status: resp.StatusCode}
	var answer struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	// Anything but Twilio's JSON (a proxy's HTML page) is left out.
	if json.Unmarshal(raw, &answer) == nil {
		e.Code = answer.Code
		e.Message = redact(answer.Message, body, t.token)
	}
	return e
}

// redact removes secrets from s and bounds its length.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ToValidUTF8(s, "")
}
