package risk_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

// clock is a settable test clock.
var t0 = time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)

var (
	geoOnce sync.Once
	geoDB   *risk.GeoIP
)

// cityDB opens the test city database once per test binary.
func cityDB(t *testing.T) *risk.GeoIP {
	geoOnce.Do(func() {
		g, err := risk.OpenGeoIP(risktest.CityDB(t))
		require.NoError(t, err)
		geoDB = g
	})
	return geoDB
}

type fixture struct {
	clock  *testclock.Clock
	cache  cache.Cache
	engine *risk.Engine
}

func newFixture(t *testing.T, geo bool, blocklist *risk.Blocklist) *fixture {
	c := testclock.New(t0)
	mem := cache.NewMemory(cache.WithClock(c.Now))
	t.Cleanup(func() { _ = mem.Close() })
	var loc risk.Locator
	if geo {
		loc = cityDB(t)
	}
	return &fixture{clock: c, cache: mem, engine: risk.New(mem, loc, blocklist, risk.Options{Now: c.Now})}
}

func known() *gatehouse.Device {
	return &gatehouse.Device{ID: "d", FirstSeenAt: t0.Add(-30 * 24 * time.Hour)}
}

func berlinProfile() risk.Profile {
	return risk.Profile{Countries: []string{"DE"}, Cities: []string{"DE/Berlin"}, Logins: 1}
}

func names(a gatehouse.RiskAssessment) []string { return a.Names() }

func TestTestCityDatabase(t *testing.T) {
	g := cityDB(t)
	for _, c := range risktest.Cities {
		l, ok := g.Locate(netip.MustParseAddr(c.IP))
		require.True(t, ok, c.Name)
		require.Equal(t, c.Country, l.Country)
		require.Equal(t, c.Name, l.City)
		require.True(t, l.HasCoords)
		require.InDelta(t, c.Lat, l.Lat, 1e-6)
	}
	_, ok := g.Locate(netip.MustParseAddr("10.1.2.3"))
	require.False(t, ok)
	require.InDelta(t, 878, risk.DistanceKm(risktest.Berlin.Lat, risktest.Berlin.Lon, risktest.Paris.Lat, risktest.Paris.Lon), 5)
}

// Each factor fires alone under its own condition, with a fixed clock.
func TestFactorsInIsolation(t *testing.T) {
	ctx := context.Background()
	t.Run("first sign-in scores nothing", func(t *testing.T) {
		f := newFixture(t, true, nil)
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Paris.IP, FirstSignIn: true})
		require.Empty(t, a.Factors)
		require.Equal(t, 0, a.Score)
		require.Equal(t, risk.LevelLow, a.Level)
		require.Equal(t, "Paris, FR", a.Location.String())
	})
	t.Run(risk.FactorNewDevice, func(t *testing.T) {
		f := newFixture(t, false, nil)
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.1"})
		require.Equal(t, []string{risk.FactorNewDevice}, names(a))
		require.Equal(t, 25, a.Score)
		require.Equal(t, "first sign-in from this device", a.Factors[0].Reason)
	})
	t.Run(risk.FactorNewCountry, func(t *testing.T) {
		f := newFixture(t, true, nil)
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Paris.IP, Device: known(), Profile: berlinProfile()})
		require.Equal(t, []string{risk.FactorNewCountry}, names(a))
		require.Equal(t, "first sign-in from FR", a.Factors[0].Reason)
	})
	t.Run(risk.FactorNewCity, func(t *testing.T) {
		f := newFixture(t, true, nil)
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Munich.IP, Device: known(), Profile: berlinProfile()})
		require.Equal(t, []string{risk.FactorNewCity}, names(a))
		require.Equal(t, 10, a.Score)
	})
	t.Run("geo factors off without a database", func(t *testing.T) {
		f := newFixture(t, false, nil)
		require.False(t, f.engine.GeoEnabled())
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Sydney.IP, Device: known(), Profile: berlinProfile()})
		require.Empty(t, a.Factors)
		require.False(t, a.Located)
	})
	t.Run(risk.FactorImpossibleTravel, func(t *testing.T) {
		f := newFixture(t, true, nil)
		p := berlinProfile()
		p.Countries, p.Cities = append(p.Countries, "AU"), append(p.Cities, "AU/Sydney")
		p.Last = &risk.Place{Lat: risktest.Berlin.Lat, Lon: risktest.Berlin.Lon, At: t0.Add(-2 * time.Hour), Place: "Berlin, DE"}
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Sydney.IP, Device: known(), Profile: p})
		require.Equal(t, []string{risk.FactorImpossibleTravel}, names(a))
		require.Contains(t, a.Factors[0].Reason, "km from Berlin, DE in 2h0m")
		// A day later the same trip is believable.
		p.Last.At = t0.Add(-24 * time.Hour)
		require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Sydney.IP, Device: known(), Profile: p}).Factors)
	})
	t.Run(risk.FactorFailedAccount, func(t *testing.T) {
		f := newFixture(t, false, nil)
		for range 3 {
			f.engine.RecordFailure(ctx, "", "u")
		}
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.1", Device: known()})
		require.Equal(t, []string{risk.FactorFailedAccount}, names(a))
		require.Equal(t, "3 failed sign-ins to this account in the last 15m0s", a.Factors[0].Reason)
		// The window passes.
		f.clock.Advance(15 * time.Minute)
		require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.1", Device: known()}).Factors)
	})
	t.Run(risk.FactorFailedIP, func(t *testing.T) {
		f := newFixture(t, false, nil)
		for range 5 {
			f.engine.RecordFailure(ctx, "10.0.0.9", "")
		}
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.9", Device: known()})
		require.Equal(t, []string{risk.FactorFailedIP}, names(a))
		require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.8", Device: known()}).Factors)
	})
	t.Run(risk.FactorIPReputation+" blocklist", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "blocklist.txt")
		require.NoError(t, os.WriteFile(path, []byte("# bad\n10.6.0.0/16\n"), 0o600))
		bl, err := risk.OpenBlocklist(path, nil, 0)
		require.NoError(t, err)
		f := newFixture(t, false, bl)
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.6.1.2", Device: known()})
		require.Equal(t, []string{risk.FactorIPReputation}, names(a))
		require.Equal(t, "the address is on the IP blocklist", a.Factors[0].Reason)
	})
	t.Run(risk.FactorIPReputation+" failure burst", func(t *testing.T) {
		f := newFixture(t, false, nil)
		for range 20 {
			f.engine.RecordFailure(ctx, "10.0.0.7", "")
		}
		// A quarter of an hour later the velocity window has passed, the
		// burst (an hour) has not: reputation alone.
		f.clock.Advance(15 * time.Minute)
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.7", Device: known()})
		require.Equal(t, []string{risk.FactorIPReputation}, names(a))
		require.Contains(t, a.Factors[0].Reason, "sent 20 failed sign-ins")
	})
	t.Run(risk.FactorUnusualHour, func(t *testing.T) {
		f := newFixture(t, false, nil)
		p := risk.Profile{Logins: 10}
		p.Hours[20] = 10 // always at 20:00 UTC; now is 09:30
		a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.1", Device: known(), Profile: p})
		require.Equal(t, []string{risk.FactorUnusualHour}, names(a))
		p.Hours[10] = 1 // a neighbour hour is usual enough
		require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.1", Device: known(), Profile: p}).Factors)
		p = risk.Profile{Logins: 9}
		p.Hours[20] = 9 // too little history to judge
		require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.1", Device: known(), Profile: p}).Factors)
	})
	t.Run("refresh skips device and failure factors", func(t *testing.T) {
		f := newFixture(t, false, nil)
		for range 5 {
			f.engine.RecordFailure(ctx, "10.0.0.3", "u")
		}
		require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.3", Refresh: true}).Factors)
	})
}

func TestBlocklistReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blocklist.txt")
	require.NoError(t, os.WriteFile(path, []byte("203.0.113.5\n"), 0o600))
	c := testclock.New(t0)
	bl, err := risk.OpenBlocklist(path, c.Now, time.Minute)
	require.NoError(t, err)
	a, b := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("198.51.100.0")
	require.True(t, bl.Contains(a))
	require.True(t, bl.Contains(netip.MustParseAddr("::ffff:203.0.113.5")), "IPv4-mapped")
	require.False(t, bl.Contains(b))

	require.NoError(t, os.WriteFile(path, []byte("198.51.100.0/24 # a whole range\n\n"), 0o600))
	require.True(t, bl.Contains(a), "not looked at again before a minute passes")
	c.Advance(time.Minute)
	require.False(t, bl.Contains(a))
	require.True(t, bl.Contains(b))
	require.Equal(t, 1, bl.Len())

	// A broken file keeps the last good list and says why.
	require.NoError(t, os.WriteFile(path, []byte("198.51.100.0/24\nnot-an-ip\n"), 0o600))
	c.Advance(time.Minute)
	require.True(t, bl.Contains(b))
	require.ErrorContains(t, bl.Err(), `line 2: "not-an-ip"`)

	_, err = risk.OpenBlocklist(path, nil, 0)
	require.Error(t, err, "a broken file stops the start")
}

// drawInput draws a sign-in with any mix of conditions.
func drawInput(t *rapid.T, f *fixture, cityIPs []string) risk.Input {
	ctx := context.Background()
	in := risk.Input{UserID: "u" + rapid.StringMatching(`[a-z]{4}`).Draw(t, "user"), FirstSignIn: rapid.Bool().Draw(t, "first")}
	in.IP = rapid.SampledFrom(append(cityIPs, "10.0.0.1", "10.6.0.1")).Draw(t, "ip")
	if rapid.Bool().Draw(t, "known_device") {
		in.Device = known()
	}
	if rapid.Bool().Draw(t, "profile") {
		in.Profile = berlinProfile()
		in.Profile.Logins = rapid.IntRange(1, 30).Draw(t, "logins")
		in.Profile.Hours[rapid.IntRange(0, 23).Draw(t, "usual_hour")] = in.Profile.Logins
		if rapid.Bool().Draw(t, "last") {
			in.Profile.Last = &risk.Place{Lat: risktest.Berlin.Lat, Lon: risktest.Berlin.Lon,
				At: t0.Add(-time.Duration(rapid.IntRange(1, 48*60).Draw(t, "minutes_ago")) * time.Minute), Place: "Berlin, DE"}
		}
	}
	for range rapid.IntRange(0, 25).Draw(t, "ip_failures") {
		f.engine.RecordFailure(ctx, in.IP, "")
	}
	for range rapid.IntRange(0, 5).Draw(t, "account_failures") {
		f.engine.RecordFailure(ctx, "", in.UserID)
	}
	return in
}

func cityIPs() []string {
	var ips []string
	for _, c := range risktest.Cities {
		ips = append(ips, c.IP)
	}
	return ips
}

// Property 66: a risk score is the sum of its factors' points, capped at
// 100; every factor is named once, carries its catalogue points and a
// reason; the level follows the thresholds.
func TestProperty66_RiskScoring(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blocklist.txt")
	require.NoError(t, os.WriteFile(path, []byte("10.6.0.0/16\n"), 0o600))
	bl, err := risk.OpenBlocklist(path, nil, 0)
	require.NoError(t, err)
	rapid.Check(t, func(rt *rapid.T) {
		f := newFixture(t, true, bl)
		in := drawInput(rt, f, cityIPs())
		a := f.engine.Assess(context.Background(), in)
		sum, seen := 0, map[string]bool{}
		for _, fc := range a.Factors {
			require.False(rt, seen[fc.Name], "factor %s twice", fc.Name)
			seen[fc.Name] = true
			require.Equal(rt, risk.Points[fc.Name], fc.Points)
			require.NotEmpty(rt, fc.Reason)
			sum += fc.Points
		}
		require.Equal(rt, min(sum, 100), a.Score)
		require.GreaterOrEqual(rt, a.Score, 0)
		require.LessOrEqual(rt, a.Score, 100)
		want := risk.LevelLow
		if a.Score >= 70 {
			want = risk.LevelHigh
		} else if a.Score >= 40 {
			want = risk.LevelMedium
		}
		require.Equal(rt, want, a.Level)
		require.False(rt, seen[risk.FactorNewCountry] && seen[risk.FactorNewCity])
		require.Equal(rt, in.Device == nil && !in.FirstSignIn, seen[risk.FactorNewDevice])
		// Same inputs, same score.
		require.Equal(rt, a, f.engine.Assess(context.Background(), in))
	})
}

// Property 94: impossible travel fires exactly when the previous located
// sign-in is at least 100 km away and reaching here since then needs more
// than 900 km/h.
func TestProperty94_ImpossibleTravelAlert(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := newFixture(t, true, nil)
		from := rapid.SampledFrom(risktest.Cities).Draw(rt, "from")
		to := rapid.SampledFrom(risktest.Cities).Draw(rt, "to")
		elapsed := time.Duration(rapid.IntRange(1, 72*60).Draw(rt, "minutes")) * time.Minute
		p := risk.Profile{Logins: 1, Countries: []string{from.Country, to.Country}, Cities: []string{from.Country + "/" + from.Name, to.Country + "/" + to.Name},
			Last: &risk.Place{Lat: from.Lat, Lon: from.Lon, At: t0.Add(-elapsed), Place: from.Name}}
		a := f.engine.Assess(context.Background(), risk.Input{UserID: "u", IP: to.IP, Device: known(), Profile: p})
		km := risk.DistanceKm(from.Lat, from.Lon, to.Lat, to.Lon)
		require.Equal(rt, km >= 100 && km/elapsed.Hours() > 900, a.Has(risk.FactorImpossibleTravel), "%s→%s %.0f km in %s", from.Name, to.Name, km, elapsed)
	})
}

// Property 33: the trust score is 10 plus 30 for MFA, 25 for a trusted
// device, 15 for a known location, 10 for a clean IP and 10 for a device
// known a week; so it lies in 10..100 and never falls when a signal is added.
func TestProperty33_TrustScoreCalculation(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		in := risk.TrustInput{
			MFA: rapid.Bool().Draw(rt, "mfa"), TrustedDevice: rapid.Bool().Draw(rt, "trusted"),
			KnownLocation: rapid.Bool().Draw(rt, "known"), CleanIP: rapid.Bool().Draw(rt, "clean"),
			DeviceAge: time.Duration(rapid.IntRange(0, 60*24).Draw(rt, "age_hours")) * time.Hour,
		}
		want := 10
		for on, pts := range map[*bool]int{&in.MFA: 30, &in.TrustedDevice: 25, &in.KnownLocation: 15, &in.CleanIP: 10} {
			if *on {
				want += pts
			}
		}
		if in.DeviceAge >= 7*24*time.Hour {
			want += 10
		}
		got := risk.Trust(in)
		require.Equal(rt, want, got)
		require.True(rt, got >= 10 && got <= 100)
		up := in
		switch rapid.IntRange(0, 4).Draw(rt, "signal") {
		case 0:
			up.MFA = true
		case 1:
			up.TrustedDevice = true
		case 2:
			up.KnownLocation = true
		case 3:
			up.CleanIP = true
		case 4:
			up.DeviceAge = 8 * 24 * time.Hour
		}
		require.GreaterOrEqual(rt, risk.Trust(up), got)
	})
}

// Property 35: a sign-in from a new place (country, city, or one out of
// reach since the last sign-in) has a lower trust score than the same
// sign-in from a known place.
func TestProperty35_NewLocationReducesTrust(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := newFixture(t, true, nil)
		to := rapid.SampledFrom([]risktest.City{risktest.Munich, risktest.Paris, risktest.Sydney, risktest.NewYork}).Draw(rt, "to")
		mfa := rapid.Bool().Draw(rt, "mfa")
		d := known()
		d.Trusted = rapid.Bool().Draw(rt, "trusted")
		p := berlinProfile()
		if rapid.Bool().Draw(rt, "recent") {
			p.Last = &risk.Place{Lat: risktest.Berlin.Lat, Lon: risktest.Berlin.Lon, At: t0.Add(-time.Hour), Place: "Berlin, DE"}
		}
		ctx := context.Background()
		home := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: risktest.Berlin.IP, Device: d, Profile: p})
		away := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: to.IP, Device: d, Profile: p})
		require.Less(rt, risk.TrustFor(away, mfa, d, t0), risk.TrustFor(home, mfa, d, t0))
	})
}

// The profile remembers places and hours, within its caps.
func TestProfileRecord(t *testing.T) {
	var p risk.Profile
	p.Record(t0, gatehouse.Location{Country: "DE", City: "Berlin", Lat: 1, Lon: 2, HasCoords: true}, true)
	p.Record(t0.Add(time.Hour), gatehouse.Location{}, false)
	require.Equal(t, []string{"DE"}, p.Countries)
	require.Equal(t, []string{"DE/Berlin"}, p.Cities)
	require.Equal(t, 2, p.Logins)
	require.Equal(t, 1, p.Hours[9])
	require.Equal(t, 1, p.Hours[10])
	require.Equal(t, "Berlin, DE", p.Last.Place)
	require.Equal(t, p, risk.DecodeProfile(p.Encode()))
	require.Equal(t, risk.Profile{}, risk.DecodeProfile([]byte("junk")))
}
