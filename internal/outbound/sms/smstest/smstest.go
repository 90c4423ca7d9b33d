// Package smstest runs an in-process HTTP server speaking Twilio's
// Messaging API wire protocol, so code that sends SMS can be tested end to
// end through a real HTTP exchange.
//
//	srv := smstest.Start(t)
//	sender, _ := sms.NewTwilio(srv.URL(), srv.SID, srv.Token, smstest.From, 0)
//	... // something that texts +15551234567
//	code := smstest.CodeFrom(srv.WaitMessage("+15551234567").Body)
//
// It checks basic auth, the account SID in the path and the form fields as
// Twilio does, answers Twilio-shaped JSON, and fails the next calls with a
// chosen status on demand to test retries.
package smstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

// From is a sender number tests can use.
const From = "+15005550006"

// InvalidNumber is refused with 400 and code 21211, like Twilio's magic
// test number of the same value.
const InvalidNumber = "+15005550001"

// WaitTimeout is how long WaitMessage waits.
const WaitTimeout = 10 * time.Second

// Message is one message the server accepted.
type Message struct {
	SID  string // "SM..." as answered
	To   string
	From string
	Body string
}

// Server is a running fake Twilio API.
type Server struct {
	// SID and Token are the credentials the server accepts.
	SID, Token string

	t    testing.TB
	http *httptest.Server

	mu         sync.Mutex
	msgs       []Message
	taken      map[string]bool // by SID: returned by WaitMessage
	failNext   int
	failStatus int
	changed    chan struct{} // closed and replaced whenever msgs grows
}

// Start starts a server with fresh credentials; it stops when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{SID: "AC" + randomHex(16), Token: randomHex(16), t: t, taken: map[string]bool{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.create)
	s.http = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// URL is the API base URL (GATEHOUSE_TWILIO_API_URL).
func (s *Server) URL() string { return s.http.URL }

// Close stops the server; later calls are refused, which simulates an
// outage. Safe to call more than once.
func (s *Server) Close() { s.http.Close() }

// FailNext makes the next n calls fail with status: 500 or 503 (Twilio
// down), 429 (rate limited) or 400 (invalid number, code 21211), each with
// Twilio's JSON error body.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// Messages returns a copy of every message accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitMessage returns the oldest message to the number to that no earlier
// WaitMessage returned, waiting up to WaitTimeout; it fails the test if
// none arrives. Consecutive calls walk through a number's messages.
func (s *Server) WaitMessage(to string) Message {
	s.t.Helper()
	deadline := time.After(WaitTimeout)
	for {
		m, ok, changed := s.take(to)
		if ok {
			return m
		}
		select {
		case <-changed:
		case <-deadline:
			s.t.Fatalf("smstest: no new message to %s within %s (%d received in all)", to, WaitTimeout, len(s.Messages()))
			return Message{}
		}
	}
}

// take returns the oldest message to to not taken yet, or a channel closed
// when the next message arrives.
func (s *Server) take(to string) (Message, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.msgs, func(m Message) bool { return m.To == to && !s.taken[m.SID] })
	if i < 0 {
		return Message{}, false, s.changed
	}
	s.taken[s.msgs[i].SID] = true
	return s.msgs[i], true, nil
}

var digits6 = regexp.MustCompile(`\b\d{6}\b`)

// CodeFrom returns the first 6-digit code in body, or "".
func CodeFrom(body string) string { return digits6.FindString(body) }

var e164 = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	sid, token, ok := r.BasicAuth()
	if !ok || sid != s.SID || token != s.Token {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.PathValue("sid") != s.SID {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
		twilioError(w, http.StatusBadRequest, 20001, "Invalid request body")
		return
	}
	m := Message{To: r.PostForm.Get("To"), From: r.PostForm.Get("From"), Body: r.PostForm.Get("Body")}
	switch {
	case m.To == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case m.From == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case m.Body == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case !e164.MatchString(m.To) || m.To == InvalidNumber:
		twilioError(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", m.To))
		return
	}

	s.mu.Lock()
	if s.failNext > 0 {
		s.failNext--
		status := s.failStatus
		s.mu.Unlock()
		switch status {
		case http.StatusBadRequest:
			twilioError(w, status, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", m.To))
		case http.StatusTooManyRequests:
			twilioError(w, status, 20429, "Too Many Requests")
		default:
			twilioError(w, status, 20500, "Internal Server Error")
		}
		return
	}
	m.SID = "SM" + randomHex(16)
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	now := time.Now().UTC().Format(time.RFC1123Z)
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": m.SID, "account_sid": s.SID, "to": m.To, "from": m.From, "body": m.Body,
		"status": "queued", "direction": "outbound-api", "num_segments": "1", "api_version": "2010-04-01",
		"date_created": now, "date_updated": now, "date_sent": nil, "error_code": nil, "error_message": nil,
		"uri": "/2010-04-01/Accounts/" + s.SID + "/Messages/" + m.SID + ".json",
	})
}

func twilioError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": message, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
