package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
)

// ConsentManager lists and revokes a user's consents to OpenID Connect
// clients (an *oidcprovider.Consents).
type ConsentManager interface {
	// List returns the user's consents with the client names.
	List(ctx context.Context, userID string) ([]ConsentView, error)
	// Revoke forgets the consent and ends the client's sessions of the
	// user. not_found when there is no such consent.
	Revoke(ctx context.Context, userID, clientID string) error
}

// ConsentView is a consent with its client's name.
type ConsentView = struct {
	gatehouse.Consent
	ClientName string
}

// Consent is the API's view of a consent.
type Consent struct {
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Scopes     []string  `json:"scopes"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func (s *Server) registerConsents() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-consents", Method: http.MethodGet, Path: "/auth/consents", Tags: []string{TagAuth},
		Summary: "List the apps I allowed", Description: "Third-party OpenID Connect clients the caller consented to, with the scopes allowed.",
	}), func(ctx context.Context, _ *struct{}) (*struct {
		Body struct {
			Items      []Consent `json:"items"`
			NextCursor *string   `json:"next_cursor"`
		}
	}, error) {
		if s.consents == nil {
			return nil, Problem(errClientsUnavailable)
		}
		list, err := s.consents.List(ctx, mustPrincipal(ctx).UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &struct {
			Body struct {
				Items      []Consent `json:"items"`
				NextCursor *string   `json:"next_cursor"`
			}
		}{}
		out.Body.Items = []Consent{}
		for _, c := range list {
			out.Body.Items = append(out.Body.Items, Consent{ClientID: c.ClientID, ClientName: c.ClientName,
				Scopes: orEmpty(c.Scopes), CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()})
		}
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "revoke-consent", Method: http.MethodDelete, Path: "/auth/consents/{client_id}", Tags: []string{TagAuth},
		Summary:       "Revoke an app's access",
		Description:   "Forgets the consent (the app asks again next time) and ends the app's sessions of the caller.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		ClientID string `path:"client_id" maxLength:"64"`
	}) (*noContent, error) {
		if s.consents == nil {
			return nil, Problem(errClientsUnavailable)
		}
		if err := s.consents.Revoke(ctx, mustPrincipal(ctx).UserID, in.ClientID); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})
}
