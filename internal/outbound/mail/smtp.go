package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// TLSMode says how the connection to the SMTP server is protected.
type TLSMode string

// The TLS modes of an SMTP URL's tls parameter.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS, which is
	// mandatory: a server that does not offer it is an error. The default.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, RFC 8314).
	TLSImplicit TLSMode = "implicit"
	// TLSNone never encrypts. Meant for a relay on the same host or network
	// (a sidecar MTA, Mailpit); credentials are then only sent to localhost.
	TLSNone TLSMode = "none"
)

// Default ports per TLS mode.
const (
	defaultPortStartTLS = 587
	defaultPortImplicit = 465
	defaultPortNone     = 25
)

// DefaultSMTPTimeout bounds dialling and each SMTP command.
const DefaultSMTPTimeout = 10 * time.Second

// SMTPConfig is a parsed SMTP URL. Its String, GoString, LogValue and
// MarshalJSON hide the password, so printing or logging it is safe.
type SMTPConfig struct {
	Host     string
	Port     int
	TLS      TLSMode
	Username string
	Password string
}

// String returns the URL form with the password replaced by "xxxxx".
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.Username != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.Username, "xxxxx")
		} else {
			u.User = url.User(c.Username)
		}
	}
	u.RawQuery = url.Values{"tls": {string(c.TLS)}}.Encode()
	return u.String()
}

// GoString is String, so %#v does not print the password either.
func (c SMTPConfig) GoString() string { return c.String() }

// LogValue is String, so slog's JSON handler does not print the password.
func (c SMTPConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes String, without the password.
func (c SMTPConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// Addr is host:port.
func (c SMTPConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// errBadURL is the one message for URLs url.Parse refuses. Its own error
// would quote the URL, and a password with an unescaped '#', '/' or '?'
// can end up in any part of it, so nothing of the input is repeated.
var errBadURL = errors.New("mail: invalid SMTP URL: cannot parse it " +
	"(expected smtp://[user:pass@]host[:port][?tls=none|starttls|implicit]; " +
	"percent-encode special characters in the user name and password)")

// ParseSMTPURL parses smtp://[user:pass@]host[:port][?tls=none|starttls|implicit].
// The smtps:// scheme means tls=implicit. Without tls the mode is starttls;
// without a port it is 587 for starttls, 465 for implicit and 25 for none.
// Errors never contain the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return SMTPConfig{}, errBadURL
	}
	var c SMTPConfig
	var schemeTLS TLSMode
	switch strings.ToLower(u.Scheme) {
	case "smtp":
	case "smtps":
		schemeTLS = TLSImplicit
	case "":
		return SMTPConfig{}, errors.New("mail: invalid SMTP URL: missing scheme (expected smtp:// or smtps://)")
	default:
		return SMTPConfig{}, fmt.Errorf("mail: invalid SMTP URL: unsupported scheme %q (expected smtp:// or smtps://)", u.Scheme)
	}
	if u.Opaque != "" {
		return SMTPConfig{}, errors.New("mail: invalid SMTP URL: expected smtp://host, with two slashes")
	}
	if c.Host = u.Hostname(); c.Host == "" {
		return SMTPConfig{}, errors.New("mail: invalid SMTP URL: missing host")
	}
	if u.Path != "" && u.Path != "/" {
		return SMTPConfig{}, errors.New("mail: invalid SMTP URL: unexpected path after the host")
	}
	if u.Fragment != "" {
		return SMTPConfig{}, errors.New("mail: invalid SMTP URL: unexpected fragment (#); percent-encode '#' in the password")
	}

	q := u.Query()
	for k := range q {
		if k != "tls" {
			return SMTPConfig{}, fmt.Errorf("mail: invalid SMTP URL: unknown parameter %q (only tls is supported)", k)
		}
	}
	mode := TLSMode(strings.ToLower(q.Get("tls")))
	switch mode {
	case "":
		mode = TLSStartTLS
		if schemeTLS != "" {
			mode = schemeTLS
		}
	case TLSStartTLS, TLSNone, TLSImplicit:
		if schemeTLS != "" && mode != schemeTLS {
			return SMTPConfig{}, fmt.Errorf("mail: invalid SMTP URL: smtps:// always means tls=implicit, not tls=%s", mode)
		}
	default:
		return SMTPConfig{}, fmt.Errorf("mail: invalid SMTP URL: tls=%q is not one of none, starttls, implicit", q.Get("tls"))
	}
	c.TLS = mode

	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPConfig{}, fmt.Errorf("mail: invalid SMTP URL: port %q is not between 1 and 65535", p)
		}
		c.Port = n
	} else {
		switch mode {
		case TLSImplicit:
			c.Port = defaultPortImplicit
		case TLSNone:
			c.Port = defaultPortNone
		default:
			c.Port = defaultPortStartTLS
		}
	}

	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		if c.Username == "" {
			return SMTPConfig{}, errors.New("mail: invalid SMTP URL: a password needs a user name (smtp://user:pass@host)")
		}
	}
	return c, nil
}

// SMTPOption configures an SMTPSender.
type SMTPOption func(*smtpOptions)

type smtpOptions struct {
	tlsConfig *tls.Config
	insecure  bool
	timeout   time.Duration
	helo      string
}

// WithTLSConfig sets the TLS configuration for STARTTLS and implicit TLS,
// for example to trust a private CA. When its ServerName is empty the URL's
// host is used. The config is cloned, not modified.
func WithTLSConfig(cfg *tls.Config) SMTPOption {
	return func(o *smtpOptions) { o.tlsConfig = cfg }
}

// WithInsecureSkipVerify disables certificate verification. For tests
// only: it is deliberately not reachable from the URL, so configuration
// cannot turn it on.
func WithInsecureSkipVerify() SMTPOption {
	return func(o *smtpOptions) { o.insecure = true }
}

// WithTimeout replaces DefaultSMTPTimeout, the bound on dialling and on
// each SMTP command.
func WithTimeout(d time.Duration) SMTPOption {
	return func(o *smtpOptions) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithHELO sets the name sent in EHLO (default: this machine's hostname).
func WithHELO(name string) SMTPOption {
	return func(o *smtpOptions) { o.helo = name }
}

// SMTPSender delivers messages through an SMTP server. It dials a new
// connection per message (transactional mail is low volume, and no pooled
// connection can go stale), and is safe for concurrent use.
type SMTPSender struct {
	cfg  SMTPConfig
	from string
	opts []gomail.Option
	// idDomain is the From address's domain, used in Message-IDs.
	idDomain string
}

var _ Sender = (*SMTPSender)(nil)

// NewSMTP makes a sender for rawURL (see ParseSMTPURL) sending as from, an
// RFC 5322 address such as "Gatehouse <no-reply@example.com>". With a user
// in the URL it authenticates with the strongest mechanism the server
// offers (SCRAM, CRAM-MD5, PLAIN, LOGIN); a user with tls=none is refused
// here unless the host is localhost, 127.0.0.1 or ::1, so a password never
// crosses a network in clear text. Errors never contain the password.
func NewSMTP(rawURL, from string, opts ...SMTPOption) (*SMTPSender, error) {
	cfg, err := ParseSMTPURL(rawURL)
	if err != nil {
		return nil, err
	}
	fromAddr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: invalid From address %q: %w", from, err)
	}
	if cfg.Username != "" && cfg.TLS == TLSNone && !isLoopback(cfg.Host) {
		return nil, fmt.Errorf("mail: refusing to send SMTP credentials in clear text to %s: use tls=starttls or tls=implicit (tls=none with a user works only towards localhost)", cfg.Host)
	}
	o := smtpOptions{timeout: DefaultSMTPTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.tlsConfig != nil {
		tlsCfg = o.tlsConfig.Clone()
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = cfg.Host
	}
	if o.insecure {
		tlsCfg.InsecureSkipVerify = true // #nosec G402 -- test-only option, never set from configuration.
	}

	copts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(o.timeout),
		gomail.WithTLSConfig(tlsCfg),
	}
	switch cfg.TLS {
	case TLSImplicit:
		copts = append(copts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSNone:
		copts = append(copts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		copts = append(copts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if o.helo != "" {
		copts = append(copts, gomail.WithHELO(o.helo))
	}
	if cfg.Username != "" && cfg.TLS != TLSNone {
		copts = append(copts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password))
	}
	s := &SMTPSender{cfg: cfg, from: from, opts: copts, idDomain: fromAddr.Address[strings.LastIndex(fromAddr.Address, "@")+1:]}
	if _, err := s.newClient(); err != nil {
		// go-mail's option errors name the option, never its value.
		return nil, fmt.Errorf("mail: smtp client for %s: %w", cfg.Addr(), err)
	}
	return s, nil
}

// newClient makes the go-mail client for one delivery. A client per
// message keeps concurrent sends apart: authentication state (LOGIN's
// steps) lives in the client.
func (s *SMTPSender) newClient() (*gomail.Client, error) {
	opts := s.opts
	if s.cfg.Username != "" && s.cfg.TLS == TLSNone {
		// go-mail's auto-discovery skips PLAIN and LOGIN on an unencrypted
		// connection altogether; ours still allows them towards localhost,
		// where there is no network to sniff.
		opts = append(slices.Clip(opts), gomail.WithSMTPAuthCustom(&cleartextAuth{
			user: s.cfg.Username, pass: s.cfg.Password, host: s.cfg.Host,
		}))
	}
	return gomail.NewClient(s.cfg.Host, opts...)
}

// Config returns the parsed URL (its String hides the password).
func (s *SMTPSender) Config() SMTPConfig { return s.cfg }

// Send delivers m as multipart/alternative (text and HTML) or text only
// when m.HTML is empty. A malformed or refused (5xx) recipient wraps
// ErrPermanent.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	// No default User-Agent (it names the library and its version), and a
	// Message-ID in the sender's domain rather than this machine's hostname.
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mail: from address: %w", err)
	}
	msg.SetMessageIDWithValue(rand.Text() + "@" + s.idDomain)
	// RFC 3834: tells vacation responders not to answer.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	if strings.TrimSpace(m.To) == "" {
		return fmt.Errorf("%w: empty recipient", ErrPermanent)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("%w: invalid recipient address: %w", ErrPermanent, err)
	}
	msg.Subject(singleLine(m.Subject))
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	client, err := s.newClient()
	if err != nil {
		return fmt.Errorf("mail: smtp client for %s: %w", s.cfg.Addr(), err)
	}
	// One client span around dial, TLS, auth and send: the SMTP server is
	// a dependency like any other. It names the server, never the
	// recipient.
	ctx, span := telemetry.StartSpan(ctx, "smtp send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", s.cfg.Host), attribute.Int("server.port", s.cfg.Port)))
	err = client.DialAndSendWithContext(ctx, msg)
	telemetry.EndSpan(span, err)
	if err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp() {
			return fmt.Errorf("%w: %s refused the recipient: %w", ErrPermanent, s.cfg.Addr(), err)
		}
		return fmt.Errorf("mail: send via %s: %w", s.cfg.Addr(), err)
	}
	return nil
}

// isLoopback reports the host names go-mail sends PLAIN and LOGIN to
// without TLS.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// singleLine keeps a header value on one line: a CR or LF in a subject
// built from user input must not start a new header.
func singleLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cleartextAuth picks PLAIN or LOGIN, whichever the server offers, for
// connections without TLS. It delegates to go-mail's implementations with
// unencrypted use disallowed, and those only make an exception for
// localhost: towards any other host they refuse before sending anything.
type cleartextAuth struct {
	user, pass, host string
	delegate         gosmtp.Auth
}

func (a *cleartextAuth) Start(server *gosmtp.ServerInfo) (string, []byte, error) {
	for _, mech := range server.Auth {
		switch strings.ToUpper(mech) {
		case "PLAIN":
			a.delegate = gosmtp.PlainAuth("", a.user, a.pass, a.host, false)
		case "LOGIN":
			a.delegate = gosmtp.LoginAuth(a.user, a.pass, a.host, false)
		default:
			continue
		}
		return a.delegate.Start(server)
	}
	return "", nil, fmt.Errorf("server offers no PLAIN or LOGIN authentication (offers %q)", strings.Join(server.Auth, " "))
}

func (a *cleartextAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.delegate.Next(fromServer, more)
}
