package oidcprovider_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// discoveryFields are the provider metadata names OpenID Connect Discovery
// 1.0 §3 defines, with those of the specifications the document also
// speaks for: RP-Initiated Logout 1.0, RFC 8414 (revocation and
// introspection), RFC 7636 (PKCE) and RFC 9207 / RFC 9101 flags the
// library sets.
var (
	discoveryRequired    = []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"}
	discoveryRecommended = []string{"userinfo_endpoint", "scopes_supported", "claims_supported"} // registration_endpoint: no dynamic registration
	discoveryOptional    = []string{"registration_endpoint", "response_modes_supported", "grant_types_supported", "acr_values_supported",
		"id_token_encryption_alg_values_supported", "id_token_encryption_enc_values_supported", "userinfo_signing_alg_values_supported",
		"userinfo_encryption_alg_values_supported", "userinfo_encryption_enc_values_supported", "request_object_signing_alg_values_supported",
		"request_object_encryption_alg_values_supported", "request_object_encryption_enc_values_supported", "token_endpoint_auth_methods_supported",
		"token_endpoint_auth_signing_alg_values_supported", "display_values_supported", "claim_types_supported", "service_documentation",
		"claims_locales_supported", "ui_locales_supported", "claims_parameter_supported", "request_parameter_supported",
		"request_uri_parameter_supported", "require_request_uri_registration", "op_policy_uri", "op_tos_uri",
		// other specifications
		"end_session_endpoint", "revocation_endpoint", "revocation_endpoint_auth_methods_supported",
		"revocation_endpoint_auth_signing_alg_values_supported", "introspection_endpoint", "introspection_endpoint_auth_methods_supported",
		"introspection_endpoint_auth_signing_alg_values_supported", "code_challenge_methods_supported", "check_session_iframe",
		"device_authorization_endpoint", "authorization_response_iss_parameter_supported", "backchannel_logout_supported",
		"backchannel_logout_session_supported", "frontchannel_logout_supported", "frontchannel_logout_session_supported"}
)

// The discovery document validates against Discovery 1.0's field list:
// every required and recommended field (but registration) is there with
// the right type, no field is outside the known names, and the values say
// what the provider does.
func TestDiscoveryFieldList(t *testing.T) {
	e, _ := setup(t, "sqlite")
	r := newRP(t, e, "x", "")
	var d map[string]any
	require.NoError(t, r.provider.Claims(&d))
	for _, f := range append(append([]string{}, discoveryRequired...), discoveryRecommended...) {
		require.Contains(t, d, f, "Discovery 1.0 §3 field")
	}
	known := append(append(append([]string{}, discoveryRequired...), discoveryRecommended...), discoveryOptional...)
	for f, v := range d {
		require.True(t, slices.Contains(known, f), "%q is no Discovery 1.0 (or related) metadata name", f)
		switch {
		case f == "issuer":
			require.Equal(t, issuer, v)
		case strings.HasSuffix(f, "_endpoint") || f == "jwks_uri":
			s, _ := v.(string)
			require.True(t, strings.HasPrefix(s, issuer+"/"), "%s = %v is on the issuer", f, v)
			u, err := url.Parse(s)
			require.NoError(t, err)
			require.Empty(t, u.RawQuery+u.Fragment, f)
		case strings.HasSuffix(f, "_supported") && f != "claims_parameter_supported" && f != "request_parameter_supported" &&
			f != "request_uri_parameter_supported" && f != "authorization_response_iss_parameter_supported" &&
			!strings.HasPrefix(f, "backchannel_") && !strings.HasPrefix(f, "frontchannel_"):
			list, ok := v.([]any)
			require.True(t, ok && len(list) > 0, "%s is a non-empty JSON array: %v", f, v)
		}
	}
	has := func(f, v string) bool { return slices.Contains(d[f].([]any), any(v)) }
	require.True(t, has("scopes_supported", "openid"), "§3: scopes_supported must hold openid")
	require.True(t, has("response_types_supported", "code"), "dynamic OPs must support code")
	require.True(t, has("id_token_signing_alg_values_supported", "RS256"), "RS256 must be included")
	require.False(t, has("id_token_signing_alg_values_supported", "none"), "no unsigned ID tokens from the code flow")
	for _, s := range d["subject_types_supported"].([]any) {
		require.Contains(t, []any{"public", "pairwise"}, s)
	}
	for _, c := range []string{"sub", "iss", "auth_time", "acr", "email", "name"} {
		require.True(t, has("claims_supported", c), "claims_supported names %s", c)
	}

	// The JWKS the document names serves the keys that sign ID tokens.
	resp, err := r.http.Get(d["jwks_uri"].(string))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
