package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
)

// JWK is one public key as published (RFC 7517). The type lists only
// public members, so a private one cannot be served even by mistake.
type JWK struct {
	Kty     string   `json:"kty" doc:"Key type." example:"RSA"`
	Use     string   `json:"use,omitempty" doc:"Intended use." example:"sig"`
	KeyOps  []string `json:"key_ops,omitempty" doc:"Permitted operations."`
	Alg     string   `json:"alg,omitempty" doc:"Signing algorithm." example:"RS256"`
	Kid     string   `json:"kid,omitempty" doc:"Key id, matched against the kid header of a token."`
	N       string   `json:"n,omitempty" doc:"RSA modulus, base64url."`
	E       string   `json:"e,omitempty" doc:"RSA public exponent, base64url." example:"AQAB"`
	Crv     string   `json:"crv,omitempty" doc:"Curve of an EC or OKP key."`
	X       string   `json:"x,omitempty" doc:"EC or OKP public x coordinate, base64url."`
	Y       string   `json:"y,omitempty" doc:"EC public y coordinate, base64url."`
	X5c     []string `json:"x5c,omitempty" doc:"X.509 certificate chain."`
	X5t     string   `json:"x5t,omitempty" doc:"X.509 SHA-1 thumbprint."`
	X5tS256 string   `json:"x5t#S256,omitempty" doc:"X.509 SHA-256 thumbprint."`
}

// JWKSBody is a JSON Web Key Set.
type JWKSBody struct {
	Keys []JWK `json:"keys" nullable:"false" doc:"The keys that may have signed a live token or are about to sign: the signing one, a newer one published before it signs, and recently retired ones."`
}

var jwksCacheControl = fmt.Sprintf("public, max-age=%d", int(keys.JWKSMaxAge/time.Second))

type jwksOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         JWKSBody
}

func (s *Server) registerJWKS() {
	huma.Register(s.rootAPI, huma.Operation{
		OperationID: "get-jwks",
		Method:      http.MethodGet,
		Path:        "/.well-known/jwks.json",
		Servers:     []*huma.Server{{URL: "/", Description: "Served at the root, not under " + BasePath}},
		Summary:     "Get the token signing keys",
		Description: "The public keys that verify access tokens (RS256, matched by kid). " +
			"Cacheable for five minutes; a new key is published before it signs anything.",
		Tags:   []string{TagKeys},
		Errors: []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*jwksOutput, error) {
		body, err := s.publicKeys(ctx)
		if err != nil {
			return nil, Problem(gatehouse.WrapError(gatehouse.CodeUnavailable, err, "signing keys are unavailable"))
		}
		// keys.PublishDelay covers this max-age: a key is in the set for
		// longer than any cached copy lives before it signs anything.
		return &jwksOutput{CacheControl: jwksCacheControl, Body: body}, nil
	})
}

// publicKeys returns the public half of every usable key. Symmetric and
// malformed keys are left out rather than failing the whole set.
func (s *Server) publicKeys(ctx context.Context) (JWKSBody, error) {
	out := JWKSBody{Keys: []JWK{}}
	if s.jwks == nil {
		return out, nil
	}
	set, err := s.jwks(ctx)
	if err != nil {
		return out, err
	}
	for _, k := range set.Keys {
		pub := k.Public()
		if !pub.Valid() || !pub.IsPublic() {
			continue
		}
		raw, err := pub.MarshalJSON()
		if err != nil {
			return out, fmt.Errorf("marshal key %q: %w", k.KeyID, err)
		}
		var j JWK
		if err := json.Unmarshal(raw, &j); err != nil {
			return out, fmt.Errorf("convert key %q: %w", k.KeyID, err)
		}
		out.Keys = append(out.Keys, j)
	}
	return out, nil
}
