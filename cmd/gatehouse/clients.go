package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

func newClientsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage OpenID Connect clients (apps that sign in with Gatehouse)",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	var (
		in     oidcprovider.ClientInput
		grants []string
		scopes []string
		post   []string
	)
	create := &cobra.Command{
		Use:   "create --name N --redirect-uri U [--public] [--first-party] [--grant G]... [--scope S]...",
		Short: "Register a client and print its client_id and secret as JSON",
		Long: "Register an OpenID Connect client and print {\"client_id\", \"client_secret\", ...} as JSON.\n" +
			"The secret of a confidential client is shown only here (stored as a hash); a --public client\n" +
			"has none and must use PKCE. Redirect URIs are matched exactly. Without --grant the client gets\n" +
			"authorization_code and refresh_token; without --scope openid, profile, email and offline_access.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Name == "" {
				return errors.New("--name is required")
			}
			if len(grants) > 0 {
				in.GrantTypes = grants
			}
			if len(scopes) > 0 {
				in.Scopes = scopes
			}
			if len(post) > 0 {
				in.PostLogoutRedirectURIs = post
			}
			return withApp(cmd, func(a *app.App) error {
				c, secret, err := a.Clients.Create(cmd.Context(), "", in)
				if err != nil {
					return err
				}
				out := map[string]any{
					"client_id": c.ID, "name": c.Name, "redirect_uris": c.RedirectURIs, "grant_types": c.GrantTypes,
					"scopes": c.Scopes, "public": c.Public, "first_party": c.FirstParty,
				}
				if secret != "" {
					out["client_secret"] = secret
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			})
		},
	}
	f := create.Flags()
	f.StringVar(&in.Name, "name", "", "the app's name, shown on the consent page (required)")
	f.StringArrayVar(&in.RedirectURIs, "redirect-uri", nil, "an exact redirect URI, repeatable")
	f.StringArrayVar(&post, "post-logout-redirect-uri", nil, "where end_session may return to, repeatable")
	f.BoolVar(&in.Public, "public", false, "a public client (SPA, native app): no secret, PKCE required")
	f.BoolVar(&in.FirstParty, "first-party", false, "the deployment's own app: users are not asked for consent")
	f.StringArrayVar(&grants, "grant", nil, "grant type: authorization_code, refresh_token, client_credentials; repeatable")
	f.StringArrayVar(&scopes, "scope", nil, "allowed scope (openid, profile, email, offline_access or a permission); repeatable")
	cmd.AddCommand(create)
	return cmd
}
