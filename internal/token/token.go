// Package token issues and verifies Gatehouse's access tokens (RS256 JWTs
// with typ "at+jwt", RFC 9068) and makes the opaque random secrets used as
// refresh tokens and one-time tokens, which are stored only as SHA-256.
package token

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-auth/gatehouse"
)

// Type is the JWT "typ" header of access tokens (RFC 9068).
const Type = "at+jwt"

// DefaultClientID is the client_id of tokens Gatehouse issues to its own
// API clients (GATEHOUSE_TOKEN_CLIENT_ID), which sign in without an OAuth
// client of their own.
const DefaultClientID = "gatehouse"

// ErrInvalid means the token is malformed, signed by an unknown key or
// with another algorithm, of another type, for another issuer or
// audience, expired or not yet valid. The reason is in the wrapped error
// for logs; clients only ever learn "unauthorized".
//
// Verify returns other errors (not wrapping ErrInvalid) when it could not
// tell, e.g. the key ring could not read the database: those are failures
// of the server, not of the token.
var ErrInvalid = errors.New("token: invalid access token")

// ErrUnknownKey means a token names a kid that is not in the key ring: the
// Keys' PublicKey answers it (wrapped) for such a kid.
var ErrUnknownKey = errors.New("keys: unknown key id")

// Keys is the key ring (a *keys.Ring).
type Keys interface {
	Signer(ctx context.Context) (kid string, key *rsa.PrivateKey, err error)
	// PublicKey returns the key of kid, or an error wrapping
	// ErrUnknownKey (or ErrInvalid) when there is no such key; any
	// other error means the ring could not look.
	PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error)
}

// Claims are what an access token says.
type Claims struct {
	Subject   string    // user id
	SessionID string    // sid
	ID        string    // jti
	AMR       []string  // authentication methods
	IssuedAt  time.Time // iat
	ExpiresAt time.Time // exp
	AuthTime  time.Time // auth_time: when the user last proved who they are
	// ClientID is the OAuth client the token was issued to (client_id,
	// RFC 9068 §2.2). Tokens issued before the claim existed verify with
	// it empty until they expire.
	ClientID string
	// Scope is what an OpenID Provider client was granted (scope, RFC
	// 9068 §2.2.3); empty for Gatehouse's own API clients.
	Scope []string
}

type jwtClaims struct {
	jwt.Claims
	ClientID  string   `json:"client_id,omitempty"`
	SessionID string   `json:"sid"`
	AMR       []string `json:"amr"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	Scope     string   `json:"scope,omitempty"`
}

// Service issues and verifies access tokens.
type Service struct {
	keys     Keys
	issuer   string
	audience string
	clientID string
	ttl      time.Duration
	leeway   time.Duration
	now      func() time.Time
	verified *verifiedCache // nil: every token is verified in full
}

// Options configure a Service.
type Options struct {
	Issuer   string // iss; the public URL
	Audience string // aud; defaults to Issuer
	// ClientID is the client_id of tokens issued without an OAuth client
	// (Issue); defaults to DefaultClientID.
	ClientID string
	TTL      time.Duration // lifetime of access tokens
	Leeway   time.Duration // clock skew allowed on exp/nbf/iat (default 30s)
	Now      func() time.Time
	// VerifiedCacheSize is how many verified tokens Verify remembers, so
	// a token it has seen skips the RSA signature check (everything else
	// is still checked each time); 0 remembers none.
	VerifiedCacheSize int
}

// New makes a Service.
func New(ring Keys, o Options) *Service {
	if o.Audience == "" {
		o.Audience = o.Issuer
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.Leeway == 0 {
		o.Leeway = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{keys: ring, issuer: o.Issuer, audience: o.Audience, clientID: o.ClientID, ttl: o.TTL, leeway: o.Leeway, now: o.Now,
		verified: newVerifiedCache(o.VerifiedCacheSize)}
}

// FirstParty reports whether c was issued to Gatehouse's own API clients
// (the configured client id, or none for tokens older than the claim)
// rather than to an app through the OpenID Provider.
func (s *Service) FirstParty(c Claims) bool { return c.ClientID == "" || c.ClientID == s.clientID }

// Issuer is the iss of the tokens the service issues.
func (s *Service) Issuer() string { return s.issuer }

// TTL is the lifetime of the access tokens the service issues.
func (s *Service) TTL() time.Duration { return s.ttl }

// Issue signs an access token for the user's session, for Gatehouse's own
// API clients: its client_id is the configured first-party id.
func (s *Service) Issue(ctx context.Context, userID, sessionID string, amr []string, authTime time.Time) (string, Claims, error) {
	return s.IssueFor(ctx, s.clientID, userID, sessionID, amr, authTime)
}

// IssueFor signs an access token for the user's session issued to the
// OAuth client clientID (an empty one means the first-party id), as the
// OpenID Provider issues tokens to the apps that sign users in.
func (s *Service) IssueFor(ctx context.Context, clientID, userID, sessionID string, amr []string, authTime time.Time) (string, Claims, error) {
	return s.IssueScoped(ctx, clientID, userID, sessionID, amr, authTime, nil)
}

// IssueClient signs an access token for an OAuth client acting for itself
// (client_credentials): its subject is the client id and it names no
// session, so Gatehouse's own API (which wants a session) refuses it;
// resource servers verify it with the JWKS and introspection answers it.
func (s *Service) IssueClient(ctx context.Context, clientID string, scope []string) (string, Claims, error) {
	return s.IssueScoped(ctx, clientID, clientID, "", nil, time.Time{}, scope)
}

// IssueScoped is IssueFor with the scope granted to the client.
func (s *Service) IssueScoped(ctx context.Context, clientID, userID, sessionID string, amr []string, authTime time.Time, scope []string) (string, Claims, error) {
	if clientID == "" {
		clientID = s.clientID
	}
	kid, key, err := s.keys.Signer(ctx)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue access token: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(Type),
	)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue access token: %w", err)
	}
	now := s.now().UTC().Truncate(time.Second)
	c := Claims{Subject: userID, SessionID: sessionID, ID: gatehouse.NewID(), AMR: amr,
		IssuedAt: now, ExpiresAt: now.Add(s.ttl), AuthTime: authTime.UTC().Truncate(time.Second), ClientID: clientID, Scope: scope}
	if c.AMR == nil {
		c.AMR = []string{}
	}
	jc := jwtClaims{
		Claims: jwt.Claims{
			Issuer: s.issuer, Subject: userID, Audience: jwt.Audience{s.audience}, ID: c.ID,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(c.ExpiresAt),
		},
		ClientID: clientID, SessionID: sessionID, AMR: c.AMR, Scope: strings.Join(scope, " "),
	}
	if !authTime.IsZero() {
		jc.AuthTime = c.AuthTime.Unix()
	}
	raw, err := jwt.Signed(signer).Claims(jc).Serialize()
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue access token: %w", err)
	}
	return raw, c, nil
}

// Verify checks an access token and returns its claims. Only RS256 with a
// kid from our own ring is accepted; jku, jwk and x5u headers are ignored
// (the key always comes from the ring); typ must be at+jwt; iss, aud, exp,
// nbf and iat are checked with a small leeway. client_id is returned but
// not required, so tokens issued before it was added keep working until
// they expire.
func (s *Service) Verify(ctx context.Context, raw string) (Claims, error) {
	return s.verify(ctx, raw, true)
}

// VerifyAny is Verify that also accepts tokens naming no session: those
// issued to OAuth clients acting for themselves (IssueClient).
func (s *Service) VerifyAny(ctx context.Context, raw string) (Claims, error) {
	return s.verify(ctx, raw, false)
}

func (s *Service) verify(ctx context.Context, raw string, requireSession bool) (Claims, error) {
	var key [sha256.Size]byte
	if s.verified != nil {
		key = sha256.Sum256([]byte(raw))
		if v := s.verified.get(key, s.now()); v != nil {
			pub, err := s.publicKey(ctx, v.kid)
			if err != nil {
				return Claims{}, err
			}
			if pub == v.pub || pub.Equal(v.pub) {
				return s.checkClaims(&v.claims, requireSession)
			}
			// The kid names another key now: verify again with it.
		}
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(tok.Headers) != 1 {
		return Claims{}, fmt.Errorf("%w: want exactly one signature", ErrInvalid)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, Type) && !strings.EqualFold(typ, "application/"+Type) {
		return Claims{}, fmt.Errorf("%w: typ %q", ErrInvalid, typ)
	}
	if h.KeyID == "" {
		return Claims{}, fmt.Errorf("%w: no kid", ErrInvalid)
	}
	pub, err := s.publicKey(ctx, h.KeyID)
	if err != nil {
		return Claims{}, err
	}
	var jc jwtClaims
	if err := tok.Claims(pub, &jc); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if s.verified != nil && jc.Expiry != nil {
		if until, now := jc.Expiry.Time().Add(s.leeway), s.now(); until.After(now) {
			s.verified.put(key, &verifiedToken{kid: h.KeyID, pub: pub, claims: jc, until: until}, now)
		}
	}
	return s.checkClaims(&jc, requireSession)
}

// publicKey is the ring's key of kid; an unknown kid makes the token
// invalid, any other failure is the server's.
func (s *Service) publicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	pub, err := s.keys.PublicKey(ctx, kid)
	if errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrInvalid) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return nil, fmt.Errorf("verify access token: %w", err)
	}
	return pub, nil
}

// checkClaims checks the claims of a token whose signature verified (now
// or earlier: jc may be shared, and is only read) and returns them.
func (s *Service) checkClaims(jc *jwtClaims, requireSession bool) (Claims, error) {
	if jc.Expiry == nil || jc.Subject == "" || (requireSession && jc.SessionID == "") || jc.ID == "" {
		return Claims{}, fmt.Errorf("%w: missing required claims", ErrInvalid)
	}
	err := jc.Claims.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, AnyAudience: jwt.Audience{s.audience}, Time: s.now()}, s.leeway)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	c := Claims{Subject: jc.Subject, SessionID: jc.SessionID, ID: jc.ID, AMR: slices.Clone(jc.AMR), ExpiresAt: jc.Expiry.Time().UTC(), ClientID: jc.ClientID,
		Scope: strings.Fields(jc.Scope)}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.Time().UTC()
	}
	if jc.AuthTime != 0 {
		c.AuthTime = time.Unix(jc.AuthTime, 0).UTC()
	}
	return c, nil
}

// NewOpaque returns a new 256-bit random secret, URL-safe, and its hash.
// The secret goes to the client once; only the hash is stored.
func NewOpaque() (secret string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("token: crypto/rand failed: " + err.Error())
	}
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Hash(secret)
}

// Hash is the stored form of an opaque secret. SHA-256 suffices: the
// secret has 256 bits of entropy, so it cannot be guessed from its hash.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
