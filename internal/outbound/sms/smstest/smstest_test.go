package smstest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
)

func post(t *testing.T, srv *smstest.Server, sid, user, pass string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/2010-04-01/Accounts/"+sid+"/Messages.json", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestWireProtocol(t *testing.T) {
	srv := smstest.Start(t)
	ok := url.Values{"To": {"+15551230001"}, "From": {smstest.From}, "Body": {"code 123456"}}
	cases := []struct {
		name         string
		sid, user    string
		pass         string
		form         url.Values
		status, code int
	}{
		{"wrong token", srv.SID, srv.SID, "nope", ok, 401, 20003},
		{"other account", "AC00", srv.SID, srv.Token, ok, 404, 20404},
		{"no body", srv.SID, srv.SID, srv.Token, url.Values{"To": {"+15551230001"}, "From": {smstest.From}}, 400, 21602},
		{"not E.164", srv.SID, srv.SID, srv.Token, url.Values{"To": {"5551230001"}, "From": {smstest.From}, "Body": {"x"}}, 400, 21211},
	}
	for _, c := range cases {
		status, out := post(t, srv, c.sid, c.user, c.pass, c.form)
		require.Equal(t, c.status, status, c.name)
		require.EqualValues(t, c.code, out["code"], c.name)
		require.EqualValues(t, c.status, out["status"], c.name)
		require.NotEmpty(t, out["message"], c.name)
	}
	require.Empty(t, srv.Messages())

	status, out := post(t, srv, srv.SID, srv.SID, srv.Token, ok)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "queued", out["status"])
	got := srv.WaitMessage("+15551230001")
	require.Equal(t, out["sid"], got.SID)
	require.Equal(t, "123456", smstest.CodeFrom(got.Body))
	require.Len(t, srv.Messages(), 1)
}
