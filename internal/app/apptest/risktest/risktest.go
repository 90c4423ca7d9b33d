// Package risktest helps the risk and device tests: it builds a tiny
// MaxMind-format city database (with mmdbwriter), a few cities far apart
// on documentation and shared address ranges, so the geographic risk
// factors can be driven by the client IP; and it runs whole servers.
package risktest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// City is one entry of the test database.
type City struct {
	Name, Country string
	Lat, Lon      float64
	// Network is the range the city's addresses come from; IP is one.
	Network, IP string
}

// Cities in the test database. Berlin-Munich is about 504 km, Berlin-Paris
// 878 km, Berlin-Sydney 16,000 km.
var (
	Berlin  = City{"Berlin", "DE", 52.52, 13.405, "203.0.113.0/26", "203.0.113.10"}
	Munich  = City{"Munich", "DE", 48.137, 11.575, "203.0.113.64/26", "203.0.113.70"}
	Paris   = City{"Paris", "FR", 48.8566, 2.3522, "198.51.100.0/24", "198.51.100.10"}
	Sydney  = City{"Sydney", "AU", -33.8688, 151.2093, "192.0.2.0/24", "192.0.2.10"}
	NewYork = City{"New York", "US", 40.7128, -74.006, "100.64.0.0/24", "100.64.0.10"}
	// Cities lists them all.
	Cities = []City{Berlin, Munich, Paris, Sydney, NewYork}
)

// CityDB writes the database into a temporary directory and returns its
// path.
func CityDB(t testing.TB) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "GeoIP2-City", RecordSize: 24, IncludeReservedNetworks: true, Languages: []string{"en"},
	})
	if err != nil {
		t.Fatalf("risktest: %v", err)
	}
	for _, c := range Cities {
		_, network, err := net.ParseCIDR(c.Network)
		if err != nil {
			t.Fatalf("risktest: %v", err)
		}
		err = tree.Insert(network, mmdbtype.Map{
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(c.Country)},
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(c.Name)}},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(c.Lat), "longitude": mmdbtype.Float64(c.Lon)},
		})
		if err != nil {
			t.Fatalf("risktest: insert %s: %v", c.Name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("risktest: %v", err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatalf("risktest: write: %v", err)
	}
	return path
}

// ForEachEngine runs fn in parallel on a fresh server per database engine,
// configured with what config returns (full GATEHOUSE_* names).
func ForEachEngine(t *testing.T, config func(t *testing.T) map[string]string, fn func(t *testing.T, env *apptest.Env)) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			fn(t, apptest.New(t, eng, config(t)))
		})
	}
}

var seq atomic.Int64

// Seq is a number unique within the test binary.
func Seq() int64 { return seq.Add(1) }

// NewUser registers a fresh account and returns its email and id.
func NewUser(t require.TestingT, env *apptest.Env) (string, string) {
	n := Seq()
	email := fmt.Sprintf("user%d-%d@example.com", n/100, n%100)
	r := env.Do("POST", "/auth/register", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	return email, r.JSON["user"].(map[string]any)["id"].(string)
}

// WaitMail returns the text of the next email to the address whose
// subject contains want, passing over the others.
func WaitMail(t testing.TB, env *apptest.Env, to, want string) string {
	t.Helper()
	for {
		m := env.Mail.WaitFor(t, to, 20*time.Second)
		if strings.Contains(m.Subject, want) {
			return m.Text
		}
	}
}

// Audits returns the user's audit rows of an action, newest first.
func Audits(t require.TestingT, env *apptest.Env, userID, action string) []gatehouse.AuditLog {
	rows, err := env.App.DB.ListAuditLogs(context.Background(), store.AuditQuery{UserID: userID, Action: action, Limit: 200})
	require.NoError(t, err)
	return rows
}

// Browser is a test client that, like a browser, presents the device
// cookie the server set for it and keeps the one the server sets (a
// sign-in route mints one for a browser without a valid cookie). Its
// zero Cookie is a browser that has never signed in.
type Browser struct {
	UA string
	// IP is sent as X-Forwarded-For when set.
	IP string
	// Cookie is the device cookie it holds.
	Cookie string
	// Script makes it a client that is no browser: it sends no Fetch
	// Metadata and keeps no cookie, so the server names its device by its
	// User-Agent.
	Script bool
}

// Do sends a request as b and keeps any device cookie the answer sets.
func (b *Browser) Do(env *apptest.Env, method, path string, body any, bearer string) *apptest.Response {
	env.T.Helper()
	// Browsers send Fetch Metadata; the server then names the device by
	// the cookie it mints from the first sign-in on.
	h := map[string]string{"User-Agent": b.UA}
	if !b.Script {
		h["Sec-Fetch-Mode"], h["Sec-Fetch-Site"] = "cors", "same-origin"
	}
	if b.IP != "" {
		h["X-Forwarded-For"] = b.IP
	}
	if b.Cookie != "" {
		h["Cookie"] = fingerprint.CookieName + "=" + b.Cookie
	}
	r, err := env.Send(method, path, body, bearer, h)
	if err != nil {
		env.T.Fatalf("risktest: %s %s: %v", method, path, err)
	}
	if c := SetCookie(r); c != nil && !b.Script {
		b.Cookie = c.Value
	}
	return r
}

// SetCookie is the device cookie an answer sets, or nil.
func SetCookie(r *apptest.Response) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == fingerprint.CookieName {
			return c
		}
	}
	return nil
}

// Browsers keeps one Browser per server and User-Agent, so tests that
// sign in "with Firefox" twice come from the same browser, cookie and all.
type Browsers struct{ m sync.Map }

// Get returns the browser of env with the User-Agent ua.
func (bs *Browsers) Get(env *apptest.Env, ua string) *Browser {
	type key struct {
		env *apptest.Env
		ua  string
	}
	b, _ := bs.m.LoadOrStore(key{env, ua}, &Browser{UA: ua})
	return b.(*Browser)
}
