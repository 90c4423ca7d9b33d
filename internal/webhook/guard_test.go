package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
)

func TestValidateURL(t *testing.T) {
	refused := []string{
		"http://127.0.0.1/hook", "http://127.1.2.3:8080/", "https://[::1]/", "http://[::ffff:127.0.0.1]/",
		"http://[::ffff:8.8.8.8]/", "http://100.64.0.1/", "http://100.127.255.254/", "http://10.0.0.1/",
		"http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/",
		"http://0.1.2.3/", "http://224.0.0.1/", "http://255.255.255.255/", "http://[fe80::1]/", "http://[fc00::1]/",
		"http://[ff02::1]/", "http://[::]/", "http://[64:ff9b::7f00:1]/", "http://localhost/", "http://api.localhost./",
	}
	for _, u := range refused {
		_, err := ValidateURL(u, false)
		require.Error(t, err, u)
		var ge *gatehouse.Error
		require.True(t, errors.As(err, &ge), u)
		require.Equal(t, gatehouse.CodeValidationFailed, ge.Code)
		require.Equal(t, "url", ge.Fields[0].Location)
		_, err = ValidateURL(u, true)
		require.NoError(t, err, "allowed with allow-private: %s", u)
	}
	malformed := []string{"ftp://example.com/", "example.com/hook", "https://", "https://user:pw@example.com/",
		"javascript:alert(1)", "https://" + strings.Repeat("a", 2050) + ".com/"}
	for _, u := range malformed {
		_, err := ValidateURL(u, true)
		require.Error(t, err, u)
		require.Equal(t, gatehouse.CodeValidationFailed, gatehouse.ErrorCode(err))
	}
	for _, u := range []string{"https://example.com/hook?x=1", "HTTP://Example.com:8443/a", "https://8.8.8.8/", "https://[2001:4860:4860::8888]/"} {
		_, err := ValidateURL(u, false)
		require.NoError(t, err, u)
	}
}

// Numeric and odd spellings of internal addresses, as browsers and C's
// inet_aton read them, are refused at creation as their dotted forms are,
// with the same Blocked the dialer applies; allow-private lets them in.
func TestValidateURLRefusesEverySpellingOfAnAddress(t *testing.T) {
	for _, host := range []string{
		"127.1", "0x7f000001", "0X7F000001", "2130706433", "0177.0.0.1", "0", "127.0.0.1.", "0x7f.1",
		"017700000001", "127.0.1", "0x7f.0.0.0x1", "10.1", "167772161", "0xa9fea9fe", "169.254.43518",
		"0300.0250.0.1", "localhost.", "LOCALHOST", "127.0.0.1..", ".127.0.0.1", "\uff11\uff12\uff17.\uff10.\uff10.\uff11", "0.0.0.0.",
	} {
		u := "http://" + host + ":8080/hook"
		_, err := ValidateURL(u, false)
		require.Error(t, err, u)
		var ge *gatehouse.Error
		require.True(t, errors.As(err, &ge), u)
		require.Equal(t, gatehouse.CodeValidationFailed, ge.Code, u)
		require.Equal(t, "url", ge.Fields[0].Location, u)
		_, err = ValidateURL(u, true)
		require.NoError(t, err, "allowed with allow-private: %s", u)
	}
	// Public addresses in the same spellings, and names, pass.
	for _, host := range []string{"8.8.8.8.", "134744072", "0x8080808", "8.8.2056", "010.010.010.010", "example.com.", "1example.com", "example.com0x"} {
		_, err := ValidateURL("https://"+host+"/hook", false)
		if host == "example.com0x" {
			require.NoError(t, err, "a label merely starting like hex is a name")
			continue
		}
		require.NoError(t, err, host)
	}
	// A host ending in a number that is no address is refused, as browsers
	// refuse it.
	for _, host := range []string{"1.2.3.4.5", "example.123", "256.1.1.1", "1.2.3.08", "0x100.0.0.1", "1.16777216"} {
		_, err := ValidateURL("https://"+host+"/", false)
		require.Error(t, err, host)
		require.Equal(t, gatehouse.CodeValidationFailed, gatehouse.ErrorCode(err), host)
	}
}

// Every inet_aton spelling of an address parses to that address.
func TestLiteralAddrSpellings(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		v := rapid.Uint32().Draw(rt, "addr")
		want := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		b := want.As4()
		num := func(n uint64) string {
			switch rapid.IntRange(0, 2).Draw(rt, "base") {
			case 0:
				return strconv.FormatUint(n, 10)
			case 1:
				return "0" + strconv.FormatUint(n, 8)
			default:
				return "0x" + strconv.FormatUint(n, 16)
			}
		}
		var spelled string
		switch rapid.IntRange(1, 4).Draw(rt, "parts") {
		case 1:
			spelled = num(uint64(v))
		case 2:
			spelled = num(uint64(b[0])) + "." + num(uint64(v&0xffffff))
		case 3:
			spelled = num(uint64(b[0])) + "." + num(uint64(b[1])) + "." + num(uint64(v&0xffff))
		default:
			spelled = num(uint64(b[0])) + "." + num(uint64(b[1])) + "." + num(uint64(b[2])) + "." + num(uint64(b[3]))
		}
		if rapid.Bool().Draw(rt, "trailing dot") {
			spelled += "."
		}
		got, literal, err := literalAddr(lookupName(spelled))
		require.NoError(rt, err, spelled)
		require.True(rt, literal, spelled)
		require.Equal(rt, want, got, spelled)
		_, err = ValidateURL("http://"+spelled+"/", false)
		require.Equal(rt, Blocked(want), err != nil, "%s: creation and the dialer disagree", spelled)
	})
}

func TestBlockedIPv4MappedAlways(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(rt, "ipv4")
		v4 := netip.AddrFrom4([4]byte(b))
		require.True(t, Blocked(netip.AddrFrom16(v4.As16())), "every IPv4-mapped form is refused")
		if v4.IsPrivate() || v4.IsLoopback() {
			require.True(t, Blocked(v4))
		}
	})
}

// TestDialGuardRefusesLoopback: with private addresses not allowed, the
// dialer refuses 127.0.0.1 when connecting, so the receiver never sees a
// request, whatever the URL said.
func TestDialGuardRefusesLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()

	res := newHTTPClient(false, 5*time.Second).post(context.Background(), srv.URL, "msg", 1, []byte("{}"), []byte("k"))
	require.ErrorIs(t, res.err, errBlockedAddress)
	require.NotContains(t, res.err.Error(), srv.URL, "errors do not quote the URL")
	require.Zero(t, hits.Load())

	res = newHTTPClient(true, 5*time.Second).post(context.Background(), srv.URL, "msg", 1, []byte("{}"), []byte("k"))
	require.NoError(t, res.err)
	require.Equal(t, int32(1), hits.Load())
}

// TestRedirectNotFollowed: a 3xx is the answer, and a failure.
func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/next", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	res := newHTTPClient(true, 5*time.Second).post(context.Background(), srv.URL, "msg", 1, []byte("{}"), []byte("k"))
	require.Error(t, res.err)
	require.Equal(t, http.StatusTemporaryRedirect, res.status)
	require.False(t, followed.Load())
}

func TestDefaultBackoff(t *testing.T) {
	require.Equal(t, 8*time.Second, DefaultBackoff(1))
	require.Equal(t, 32*time.Second, DefaultBackoff(2))
	require.Greater(t, DefaultBackoff(7), 2*time.Hour)
	require.Equal(t, 12*time.Hour, DefaultBackoff(30))
	s := New(nil, nil, nil, nil, nil, Options{})
	for attempt := 1; attempt < 8; attempt++ {
		d := s.retryDelay("some-delivery", attempt)
		require.GreaterOrEqual(t, d, DefaultBackoff(attempt)/2)
		require.LessOrEqual(t, d, DefaultBackoff(attempt))
		require.Equal(t, d, s.retryDelay("some-delivery", attempt), "deterministic per delivery and attempt")
	}
	require.LessOrEqual(t, s.retryDelay("x", 1), 10*time.Second, "first retry within about 10 s")
}
