// Package mailtest runs an in-process SMTP server for tests, so code that
// sends email can be tested end to end through a real SMTP conversation.
//
//	srv := mailtest.Start(t)
//	sender, _ := mail.NewSMTP(srv.URL(), "Gatehouse <no-reply@localhost>")
//	... // something that sends to alice@example.com
//	got := srv.WaitFor(t, "alice@example.com", 5*time.Second)
//	link := mailtest.LinkFrom(got.Text, "http://localhost:8080/verify?")
//
// The server listens on 127.0.0.1 on a free port and stops when the test
// ends. It can require AUTH (PLAIN and LOGIN), offer STARTTLS or speak
// implicit TLS, and fail the next deliveries on demand to test retries.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To is the first envelope recipient (Gatehouse sends one per message).
	To string
	// Recipients are all envelope recipients (RCPT TO).
	Recipients []string
	// Header is the parsed message header; Header.Get("From") is the From
	// header, as opposed to the envelope sender.
	Header map[string][]string
	// Subject is the decoded Subject header.
	Subject string
	// Text and HTML are the decoded text/plain and text/html bodies (the
	// first of each in a multipart message); empty when absent.
	Text string
	HTML string
	// Raw is the message exactly as received after DATA.
	Raw []byte
	// ParseErr is set when the message could not be parsed as MIME; Raw is
	// still there.
	ParseErr error
}

// Option configures Start.
type Option func(*Server)

// WithAuth makes the server offer AUTH PLAIN and LOGIN and refuse mail
// from clients that did not authenticate as user with pass. The URL then
// carries them.
func WithAuth(user, pass string) Option {
	return func(s *Server) { s.user, s.pass = user, pass }
}

// WithAuthMechanisms limits and orders the mechanisms WithAuth offers
// ("PLAIN", "LOGIN"; both by default).
func WithAuthMechanisms(mechs ...string) Option {
	return func(s *Server) { s.mechs = mechs }
}

// WithSTARTTLS makes the server offer STARTTLS with cfg (see SelfSignedTLS);
// the URL then says tls=starttls.
func WithSTARTTLS(cfg *tls.Config) Option {
	return func(s *Server) { s.startTLS, s.implicitTLS = cfg, nil }
}

// WithImplicitTLS makes the server speak TLS from the first byte with cfg;
// the URL then says tls=implicit.
func WithImplicitTLS(cfg *tls.Config) Option {
	return func(s *Server) { s.implicitTLS, s.startTLS = cfg, nil }
}

// Server is a running test SMTP server.
type Server struct {
	user, pass  string
	mechs       []string
	startTLS    *tls.Config
	implicitTLS *tls.Config

	srv  *smtp.Server
	ln   net.Listener
	addr string
	done chan struct{}

	mu       sync.Mutex
	msgs     []Received
	taken    []bool
	failNext int
	changed  chan struct{} // closed and replaced whenever msgs grows
	closed   bool
}

// Start starts a server on 127.0.0.1:0; it stops when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{}), done: make(chan struct{})}
	for _, opt := range opts {
		opt(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if s.implicitTLS != nil {
		l = tls.NewListener(l, s.implicitTLS)
	}
	s.ln = l
	s.addr = l.Addr().String()

	srv := smtp.NewServer(backend{s})
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	// Clients decide for themselves whether to authenticate without TLS
	// (go-mail only does towards localhost, which this always is).
	srv.AllowInsecureAuth = true
	srv.TLSConfig = s.startTLS
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv

	go func() {
		defer close(s.done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server (Start registers it with t.Cleanup). Later
// connections are refused, which lets tests simulate an outage. Safe to
// call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	// Close the listener ourselves too: if Serve has not registered it
	// yet, the server's Close would not know it.
	_ = s.ln.Close()
	_ = s.srv.Close()
	<-s.done
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// URL is an smtp:// URL for mail.NewSMTP: tls=none unless WithSTARTTLS or
// WithImplicitTLS was given, with the user and password of WithAuth.
func (s *Server) URL() string {
	mode := "none"
	switch {
	case s.startTLS != nil:
		mode = "starttls"
	case s.implicitTLS != nil:
		mode = "implicit"
	}
	u := url.URL{Scheme: "smtp", Host: s.addr, RawQuery: "tls=" + mode}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// FailNext makes the next n deliveries fail with "451 4.3.0" after the
// message was transmitted, as a relay that is temporarily out of
// resources would.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// Messages returns a copy of every message received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// WaitFor returns the oldest message to the address to (compared without
// case) that no earlier WaitFor returned, waiting up to timeout for it to
// arrive; it fails the test if none does. So consecutive calls walk
// through a recipient's messages in order.
func (s *Server) WaitFor(t testing.TB, to string, timeout time.Duration) Received {
	t.Helper()
	want := normAddr(to)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i, m := range s.msgs {
			if s.taken[i] || !hasRecipient(m, want) {
				continue
			}
			s.taken[i] = true
			s.mu.Unlock()
			return m
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("mailtest: no new message to %s within %s (%d received in all)", to, timeout, len(s.Messages()))
			return Received{}
		}
	}
}

func hasRecipient(m Received, want string) bool {
	for _, r := range m.Recipients {
		if normAddr(r) == want {
			return true
		}
	}
	return false
}

func normAddr(a string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>"))
}

// LinkFrom returns the first URL in body that starts with prefix, or "" if
// there is none. The URL ends at whitespace, a quote or angle bracket, and
// loses trailing sentence punctuation. Use it on a text body; in an HTML
// body "&" in a URL appears as "&amp;".
func LinkFrom(body, prefix string) string {
	if prefix == "" {
		return ""
	}
	i := strings.Index(body, prefix)
	if i < 0 {
		return ""
	}
	link := body[i:]
	if end := strings.IndexFunc(link, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '"' || r == '\'' || r == '<' || r == '>'
	}); end >= 0 {
		link = link[:end]
	}
	return strings.TrimRight(link, ".,;:!?)]")
}

func (s *Server) deliver(from string, rcpts []string, raw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return &smtp.SMTPError{
			Code:         451,
			EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message:      "mailtest: temporary failure requested by FailNext",
		}
	}
	m := parse(raw)
	m.From = from
	m.Recipients = rcpts
	if len(rcpts) > 0 {
		m.To = rcpts[0]
	}
	s.msgs = append(s.msgs, m)
	s.taken = append(s.taken, false)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s}, nil
}

// session is one SMTP connection.
type session struct {
	s      *Server
	authed bool
	from   string
	rcpts  []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	if ss.s.mechs != nil {
		return ss.s.mechs
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	if !slices.Contains(ss.AuthMechanisms(), mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	default:
		return nil, smtp.ErrAuthUnknownMechanism
	}
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if _, err := mailAddress(to); err != nil {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "mailtest: bad recipient address"}
	}
	if strings.HasSuffix(strings.ToLower(to), "@"+RejectedDomain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailtest: mailbox unavailable"}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	return ss.s.deliver(ss.from, append([]string(nil), ss.rcpts...), buf.Bytes())
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// RejectedDomain is a recipient domain the server refuses with "550 5.1.1"
// at RCPT TO, to test permanent failures.
const RejectedDomain = "rejected.invalid"

// loginServer is the server side of AUTH LOGIN (go-sasl only has the
// client): it asks for the user name, then the password.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) > 0 { // initial response carries the user name
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(response))
	default:
		return nil, true, errors.New("mailtest: unexpected LOGIN response")
	}
}
