package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
)

// ClientAdmin manages the OpenID Provider's registered clients (an
// *oidcprovider.Clients).
type ClientAdmin interface {
	Create(ctx context.Context, actorID string, in ClientInput) (gatehouse.Client, string, error)
	Get(ctx context.Context, id string) (gatehouse.Client, error)
	List(ctx context.Context, after string, limit int) ([]gatehouse.Client, error)
	Update(ctx context.Context, actorID, id string, in ClientInput) (gatehouse.Client, error)
	RotateSecret(ctx context.Context, actorID, id string) (string, error)
	Delete(ctx context.Context, actorID, id string) error
}

// ClientInput is what an administrator gives for a client; nil lists take
// the defaults on create and keep the stored value on update.
type ClientInput = struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Scopes                 []string
	Public                 bool
	FirstParty             bool
}

// Client is the API's view of an OpenID Connect client (never its secret).
type Client struct {
	ClientID               string    `json:"client_id"`
	Name                   string    `json:"name"`
	RedirectURIs           []string  `json:"redirect_uris" doc:"Matched exactly: no prefixes, no wildcards."`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	GrantTypes             []string  `json:"grant_types"`
	Scopes                 []string  `json:"scopes" doc:"openid, profile, email, offline_access and permission strings the client may ask for."`
	Public                 bool      `json:"public" doc:"A public client (browser, native app) has no secret and must use PKCE S256."`
	FirstParty             bool      `json:"first_party" doc:"First-party clients skip the consent page."`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

// CreatedClient is the create answer: the client and, for a confidential
// client, its secret, shown this once.
type CreatedClient struct {
	Client
	ClientSecret string `json:"client_secret,omitempty" doc:"Shown only in this answer; store it now."`
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func clientBody(c gatehouse.Client) Client {
	return Client{ClientID: c.ID, Name: c.Name, RedirectURIs: orEmpty(c.RedirectURIs),
		PostLogoutRedirectURIs: orEmpty(c.PostLogoutRedirectURIs), GrantTypes: orEmpty(c.GrantTypes),
		Scopes: orEmpty(c.Scopes), Public: c.Public, FirstParty: c.FirstParty,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

type clientFields struct {
	Name                   string   `json:"name" minLength:"1" maxLength:"200"`
	RedirectURIs           []string `json:"redirect_uris,omitempty" maxItems:"20" doc:"Required for the authorization_code grant."`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty" maxItems:"20"`
	GrantTypes             []string `json:"grant_types,omitempty" maxItems:"3" doc:"authorization_code, refresh_token, client_credentials; default the first two."`
	Scopes                 []string `json:"scopes,omitempty" maxItems:"100" doc:"Default openid, profile, email, offline_access."`
	Public                 bool     `json:"public,omitempty"`
	FirstParty             bool     `json:"first_party,omitempty"`
}

func (f clientFields) input() ClientInput {
	return ClientInput{Name: f.Name, RedirectURIs: f.RedirectURIs, PostLogoutRedirectURIs: f.PostLogoutRedirectURIs,
		GrantTypes: f.GrantTypes, Scopes: f.Scopes, Public: f.Public, FirstParty: f.FirstParty}
}

type clientOutput struct{ Body Client }

type clientList struct {
	Body struct {
		Items      []Client `json:"items"`
		NextCursor *string  `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

func (s *Server) registerAdminClients() {
	if s.clients == nil {
		s.clients = unavailableClients{}
	}
	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-create-client", Method: http.MethodPost, Path: "/admin/clients", Tags: []string{TagAdmin},
		Summary:       "Register an OpenID Connect client",
		Description:   "A confidential client gets a client_secret, shown only in this answer; a public client gets none and must use PKCE (S256).",
		DefaultStatus: http.StatusCreated,
	}, "clients:write"), func(ctx context.Context, in *struct{ Body clientFields }) (*struct {
		Status int
		Body   CreatedClient
	}, error) {
		c, secret, err := s.clients.Create(ctx, mustPrincipal(ctx).UserID, in.Body.input())
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		out := &struct {
			Status int
			Body   CreatedClient
		}{Status: http.StatusCreated}
		out.Body.Client, out.Body.ClientSecret = clientBody(c), secret
		return out, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-list-clients", Method: http.MethodGet, Path: "/admin/clients", Tags: []string{TagAdmin},
		Summary: "List OpenID Connect clients", Description: "In creation order, a page at a time.",
	}, "clients:read"), func(ctx context.Context, in *pageInput) (*clientList, error) {
		after, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, Problem(err)
		}
		list, err := s.clients.List(ctx, after, in.Limit+1)
		if err != nil {
			return nil, Problem(err)
		}
		out := &clientList{}
		out.Body.Items, out.Body.NextCursor = pageOf(list, in.Limit, clientBody, func(c gatehouse.Client) string { return c.ID })
		return out, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-get-client", Method: http.MethodGet, Path: "/admin/clients/{id}", Tags: []string{TagAdmin},
		Summary: "Get an OpenID Connect client",
	}, "clients:read"), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*clientOutput, error) {
		c, err := s.clients.Get(ctx, in.ID)
		if err != nil {
			return nil, Problem(err)
		}
		return &clientOutput{Body: clientBody(c)}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-update-client", Method: http.MethodPut, Path: "/admin/clients/{id}", Tags: []string{TagAdmin},
		Summary:     "Update an OpenID Connect client",
		Description: "Fields as on create; an omitted list keeps its value. public cannot change (register a new client).",
	}, "clients:write"), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body clientFields
	}) (*clientOutput, error) {
		c, err := s.clients.Update(ctx, mustPrincipal(ctx).UserID, in.ID, in.Body.input())
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &clientOutput{Body: clientBody(c)}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-delete-client", Method: http.MethodDelete, Path: "/admin/clients/{id}", Tags: []string{TagAdmin},
		Summary: "Delete an OpenID Connect client", Description: "Every session it was granted ends; its tokens stop working.",
		DefaultStatus: http.StatusNoContent,
	}, "clients:write"), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*noContent, error) {
		if err := s.clients.Delete(ctx, mustPrincipal(ctx).UserID, in.ID); err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-rotate-client-secret", Method: http.MethodPost, Path: "/admin/clients/{id}/secret", Tags: []string{TagAdmin},
		Summary: "Rotate a client's secret", Description: "The old secret stops working at once. 422 for a public client.",
	}, "clients:write"), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*struct {
		Body struct {
			ClientSecret string `json:"client_secret"`
		}
	}, error) {
		secret, err := s.clients.RotateSecret(ctx, mustPrincipal(ctx).UserID, in.ID)
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		out := &struct {
			Body struct {
				ClientSecret string `json:"client_secret"`
			}
		}{}
		out.Body.ClientSecret = secret
		return out, nil
	})
}

// unavailableClients answers 503 when the server was built without client
// management (the OpenAPI printer).
type unavailableClients struct{}

var errClientsUnavailable = gatehouse.Errorf(gatehouse.CodeUnavailable, "client management is not available")

func (unavailableClients) Create(context.Context, string, ClientInput) (gatehouse.Client, string, error) {
	return gatehouse.Client{}, "", errClientsUnavailable
}
func (unavailableClients) Get(context.Context, string) (gatehouse.Client, error) {
	return gatehouse.Client{}, errClientsUnavailable
}
func (unavailableClients) List(context.Context, string, int) ([]gatehouse.Client, error) {
	return nil, errClientsUnavailable
}
func (unavailableClients) Update(context.Context, string, string, ClientInput) (gatehouse.Client, error) {
	return gatehouse.Client{}, errClientsUnavailable
}
func (unavailableClients) RotateSecret(context.Context, string, string) (string, error) {
	return "", errClientsUnavailable
}
func (unavailableClients) Delete(context.Context, string, string) error { return errClientsUnavailable }
