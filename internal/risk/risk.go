// Package risk scores sign-ins and refreshes from named factors, each with
// its points and a reason, so every score explains itself; decides the
// session trust score; and, through Guard, ties both to sign-in: device
// registration, step-up (an MFA challenge, or an emailed confirmation) and
// security alerts.
//
// The factors and their points:
//
//	new_device             25  first sign-in from this device (never on an account's first sign-in)
//	new_country            25  first sign-in from this country          (GeoIP)
//	new_city               10  first sign-in from this city, in a known country (GeoIP)
//	impossible_travel      45  faster than MaxSpeedKmh from the previous sign-in's place (GeoIP)
//	failed_logins_account  20  AccountFailures+ failed sign-ins to the account within FailureWindow
//	failed_logins_ip       15  IPFailures+ failed sign-ins from the IP (an IPv6 address: its /64) within FailureWindow
//	ip_reputation          40  the IP is on the blocklist, or sent a burst of BurstFailures+ failures
//	unusual_hour           10  no earlier sign-in within an hour of this time of day (after 10 sign-ins)
//
// The score is the sum, capped at 100. Without a GeoIP database the three
// geographic factors are off.
package risk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/device"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Factor names.
const (
	FactorNewDevice        = "new_device"
	FactorNewCountry       = "new_country"
	FactorNewCity          = "new_city"
	FactorImpossibleTravel = "impossible_travel"
	FactorFailedAccount    = "failed_logins_account"
	FactorFailedIP         = "failed_logins_ip"
	FactorIPReputation     = "ip_reputation"
	FactorUnusualHour      = "unusual_hour"
)

// Points are what each factor adds to the score.
var Points = map[string]int{
	FactorNewDevice: 25, FactorNewCountry: 25, FactorNewCity: 10, FactorImpossibleTravel: 45,
	FactorFailedAccount: 20, FactorFailedIP: 15, FactorIPReputation: 40, FactorUnusualHour: 10,
}

// Factor is one reason a sign-in looks risky.
type Factor struct {
	Name   string `json:"name"`
	Points int    `json:"points"`
	Reason string `json:"reason"`
}

// Levels of a score.
const (
	LevelLow    = "low"
	LevelMedium = "medium"
	LevelHigh   = "high"
)

// Assessment is a scored sign-in or refresh.
type Assessment struct {
	Score   int
	Level   string
	Factors []Factor
	// Location is where the IP is (zero when unknown or GeoIP is off).
	Location Location
	Located  bool
	// Blocklisted is set when the address is on the operator's blocklist
	// (GATEHOUSE_IP_BLOCKLIST): such a sign-in steps up whatever its score
	// (Guard.StepUp).
	Blocklisted bool
	// profile is the login profile Guard.Begin read, for Admit to extend
	// in the same transaction without reading it again.
	profile *Profile
}

// Has reports whether the named factor fired.
func (a Assessment) Has(name string) bool {
	return slices.ContainsFunc(a.Factors, func(f Factor) bool { return f.Name == name })
}

// Data is the factors as event data (plain maps, as JSON gives them back).
func (a Assessment) Data() []map[string]any {
	out := make([]map[string]any, 0, len(a.Factors))
	for _, f := range a.Factors {
		out = append(out, map[string]any{"name": f.Name, "points": f.Points, "reason": f.Reason})
	}
	return out
}

// Names lists the factors that fired.
func (a Assessment) Names() []string {
	out := make([]string, 0, len(a.Factors))
	for _, f := range a.Factors {
		out = append(out, f.Name)
	}
	return out
}

// Options tune the engine. Zero values take the defaults shown.
type Options struct {
	High   int // 70: step-up and alert from this score on
	Medium int // 40
	// MaxSpeedKmh is the fastest believable travel between sign-ins (900).
	MaxSpeedKmh float64
	// MinTravelKm ignores shorter hops, within GeoIP's precision (100).
	MinTravelKm float64
	// FailureWindow is how long failed sign-ins count (15m).
	FailureWindow time.Duration
	// AccountFailures, IPFailures and BurstFailures are the counts from
	// which failed_logins_account (3), failed_logins_ip (5) and the burst
	// form of ip_reputation (20) fire.
	AccountFailures, IPFailures, BurstFailures int
	Now                                        func() time.Time
	Logger                                     *slog.Logger
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.High, 70)
	def(&o.Medium, 40)
	def(&o.AccountFailures, 3)
	def(&o.IPFailures, 5)
	def(&o.BurstFailures, 20)
	if o.MaxSpeedKmh <= 0 {
		o.MaxSpeedKmh = 900
	}
	if o.MinTravelKm <= 0 {
		o.MinTravelKm = 100
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Engine scores sign-ins. Its inputs besides the request are the user's
// Profile (from the database), failure counters (in the cache), the GeoIP
// database and the blocklist (both in memory).
type Engine struct {
	cache     cache.Cache
	geo       Locator
	blocklist *Blocklist
	opts      Options
}

// New makes an Engine; geo and blocklist may be nil (their factors off).
func New(c cache.Cache, geo Locator, blocklist *Blocklist, o Options) *Engine {
	o.defaults()
	if g, ok := geo.(*GeoIP); ok && g == nil {
		geo = nil
	}
	return &Engine{cache: c, geo: geo, blocklist: blocklist, opts: o}
}

// GeoEnabled reports whether the geographic factors are on.
func (e *Engine) GeoEnabled() bool { return e.geo != nil }

// High is the step-up threshold.
func (e *Engine) High() int { return e.opts.High }

// Level names a score's band.
func (e *Engine) Level(score int) string {
	switch {
	case score >= e.opts.High:
		return LevelHigh
	case score >= e.opts.Medium:
		return LevelMedium
	}
	return LevelLow
}

// failIPKey and burstIPKey count per ClientNetwork, as the rate limiter
// does: addresses rotated within one IPv6 /64 share their counters.
func failIPKey(ip string) string             { return "risk:fail:ip:" + counterNetwork(ip) }
func failUserKey(id string) string           { return "risk:fail:user:" + id }
func burstIPKey(ip string) string            { return "risk:burst:ip:" + counterNetwork(ip) }
func (e *Engine) burstWindow() time.Duration { return 4 * e.opts.FailureWindow }

// Blocklisted reports whether ip is on the operator's blocklist.
func (e *Engine) Blocklisted(ip string) bool {
	a, _ := netip.ParseAddr(ip)
	return e.blocklist.Contains(a)
}

// RecordFailure counts a failed sign-in from ip against userID (empty for
// an unknown account). A cache failure is logged: the counters are a
// signal, not a lock.
func (e *Engine) RecordFailure(ctx context.Context, ip, userID string) {
	incr := func(key string, ttl time.Duration) {
		if _, err := e.cache.Incr(ctx, key, 1, ttl); err != nil {
			e.opts.Logger.WarnContext(ctx, "risk: failure counter not updated", "err", err)
		}
	}
	if ip != "" {
		incr(failIPKey(ip), e.opts.FailureWindow)
		incr(burstIPKey(ip), e.burstWindow())
	}
	if userID != "" {
		incr(failUserKey(userID), e.opts.FailureWindow)
	}
}

// ResetAccountFailures forgets the account's failures after a successful
// sign-in, so the user's own typos do not follow them.
func (e *Engine) ResetAccountFailures(ctx context.Context, userID string) {
	if err := e.cache.Delete(ctx, failUserKey(userID)); err != nil {
		e.opts.Logger.WarnContext(ctx, "risk: failure counter not reset", "err", err)
	}
}

func (e *Engine) counter(ctx context.Context, key string) int {
	v, err := e.cache.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, cache.ErrMiss) {
			e.opts.Logger.WarnContext(ctx, "risk: failure counter unreadable", "err", err)
		}
		return 0
	}
	n, _ := strconv.Atoi(string(v))
	return n
}

// Input is what a score is computed from.
type Input struct {
	UserID string
	IP     string
	// Device is the recorded device; nil for a device new to the user.
	// One named by its User-Agent alone counts as new (knownDevice).
	Device *store.Device
	// FirstSignIn is the account's first sign-in (no new_device then).
	FirstSignIn bool
	// Refresh scores a refresh: no device or failure factors.
	Refresh bool
	Profile Profile
}

// Assess scores one sign-in or refresh.
func (e *Engine) Assess(ctx context.Context, in Input) Assessment {
	now := e.opts.Now().UTC()
	var a Assessment
	add := func(name, reason string) {
		a.Factors = append(a.Factors, Factor{Name: name, Points: Points[name], Reason: reason})
	}
	ip, _ := netip.ParseAddr(in.IP)

	if !knownDevice(in.Device) && !in.FirstSignIn && !in.Refresh {
		add(FactorNewDevice, "first sign-in from this device")
	}
	if e.geo != nil {
		a.Location, a.Located = e.geo.Locate(ip)
	}
	if a.Located {
		p := in.Profile
		switch {
		case len(p.Countries) > 0 && !slices.Contains(p.Countries, a.Location.Country):
			add(FactorNewCountry, "first sign-in from "+a.Location.Country)
		case a.Location.City != "" && len(p.Cities) > 0 && !slices.Contains(p.Cities, cityKey(a.Location)):
			add(FactorNewCity, "first sign-in from "+a.Location.String())
		}
		if last := p.Last; last != nil && a.Location.HasCoords {
			km := DistanceKm(last.Lat, last.Lon, a.Location.Lat, a.Location.Lon)
			hours := max(now.Sub(last.At).Hours(), 1.0/60) // at least a minute
			if speed := km / hours; km >= e.opts.MinTravelKm && speed > e.opts.MaxSpeedKmh {
				add(FactorImpossibleTravel, fmt.Sprintf("%.0f km from %s in %s (%.0f km/h)",
					km, last.Place, now.Sub(last.At).Round(time.Minute), speed))
			}
		}
	}
	if !in.Refresh {
		if n := e.counter(ctx, failUserKey(in.UserID)); in.UserID != "" && n >= e.opts.AccountFailures {
			add(FactorFailedAccount, fmt.Sprintf("%d failed sign-ins to this account in the last %s", n, e.opts.FailureWindow))
		}
	}
	var burst int
	if in.IP != "" {
		if !in.Refresh {
			if n := e.counter(ctx, failIPKey(in.IP)); n >= e.opts.IPFailures {
				add(FactorFailedIP, fmt.Sprintf("%d failed sign-ins from this address in the last %s", n, e.opts.FailureWindow))
			}
		}
		burst = e.counter(ctx, burstIPKey(in.IP))
	}
	switch {
	case e.blocklist.Contains(ip):
		a.Blocklisted = true
		add(FactorIPReputation, "the address is on the IP blocklist")
	case burst >= e.opts.BurstFailures:
		add(FactorIPReputation, fmt.Sprintf("the address sent %d failed sign-ins in the last %s", burst, e.burstWindow()))
	}
	if !in.Refresh && in.Profile.unusualHour(now) {
		add(FactorUnusualHour, fmt.Sprintf("no earlier sign-in within an hour of %02d:00 UTC", now.Hour()))
	}
	for _, f := range a.Factors {
		a.Score += f.Points
	}
	a.Score = min(a.Score, 100)
	a.Level = e.Level(a.Score)
	return a
}

// TrustInput is what a session's trust score is computed from.
type TrustInput struct {
	MFA           bool // the session was started with a second factor
	TrustedDevice bool // the user marked its device trusted
	KnownLocation bool // no new-place or travel factor fired
	CleanIP       bool // the address has no bad reputation or failure run
	// DeviceAge is how long the device has been known.
	DeviceAge time.Duration
}

// Trust weights: a base, plus each signal's share; they sum to 100.
const (
	trustBase     = 10
	trustMFA      = 30
	trustDevice   = 25
	trustLocation = 15
	trustCleanIP  = 10
	trustAge      = 10
	// TrustAgeAfter is how long a device must be known to add trustAge.
	TrustAgeAfter = 7 * 24 * time.Hour
)

// Trust is a session's trust score, 10-100: 10, plus 30 for MFA, 25 for a
// trusted device, 15 for a known location, 10 for a clean IP and 10 for a
// device known a week or more.
func Trust(in TrustInput) int {
	score := trustBase
	for _, s := range []struct {
		on  bool
		pts int
	}{{in.MFA, trustMFA}, {in.TrustedDevice, trustDevice}, {in.KnownLocation, trustLocation},
		{in.CleanIP, trustCleanIP}, {in.DeviceAge >= TrustAgeAfter, trustAge}} {
		if s.on {
			score += s.pts
		}
	}
	return score
}

// TrustFor is Trust for an assessed sign-in or refresh.
func TrustFor(a Assessment, mfa bool, d *store.Device, now time.Time) int {
	in := TrustInput{
		MFA:           mfa,
		KnownLocation: !a.Has(FactorNewCountry) && !a.Has(FactorNewCity) && !a.Has(FactorImpossibleTravel),
		CleanIP:       !a.Has(FactorIPReputation) && !a.Has(FactorFailedIP),
	}
	if knownDevice(d) {
		in.TrustedDevice, in.DeviceAge = d.Trusted, now.Sub(d.FirstSeenAt)
	}
	return Trust(in)
}

// knownDevice reports whether d vouches for the client: a recorded device
// named by the client's own id or device cookie. One named by its
// User-Agent alone could be anybody's with a browser of that family, so
// it counts as new and its trust and age count for nothing.
func knownDevice(d *store.Device) bool {
	return d != nil && !device.ByUserAgent(d.Fingerprint, d.UserAgent)
}
