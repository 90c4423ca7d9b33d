package gatehouse

import "slices"

// Location is where an IP address is, as far as the GeoIP database knows.
type Location struct {
	Country string // ISO 3166-1 alpha-2
	City    string // English name; may be empty
	Lat     float64
	Lon     float64
	// HasCoords is false when the database gave no coordinates.
	HasCoords bool
}

// String is how a location is shown: "Berlin, DE", "DE", or "".
func (l Location) String() string {
	switch {
	case l.City != "" && l.Country != "":
		return l.City + ", " + l.Country
	default:
		return l.Country
	}
}

// RiskFactor is one reason a sign-in or refresh looks risky: a named
// factor (internal/risk lists them), the points it adds to the score, and
// the reason in words.
type RiskFactor struct {
	Name   string `json:"name"`
	Points int    `json:"points"`
	Reason string `json:"reason"`
}

// RiskAssessment is a scored sign-in or refresh: the score (0-100) and its
// level, every factor that fired, and where the address is.
type RiskAssessment struct {
	Score   int
	Level   string
	Factors []RiskFactor
	// Location is where the IP is (zero when unknown or GeoIP is off).
	Location Location
	Located  bool
	// Blocklisted is set when the address is on the operator's blocklist
	// (GATEHOUSE_IP_BLOCKLIST): such a sign-in steps up whatever its score.
	Blocklisted bool
}

// Has reports whether the named factor fired.
func (a RiskAssessment) Has(name string) bool {
	return slices.ContainsFunc(a.Factors, func(f RiskFactor) bool { return f.Name == name })
}

// Data is the factors as event data (plain maps, as JSON gives them back).
func (a RiskAssessment) Data() []map[string]any {
	out := make([]map[string]any, 0, len(a.Factors))
	for _, f := range a.Factors {
		out = append(out, map[string]any{"name": f.Name, "points": f.Points, "reason": f.Reason})
	}
	return out
}

// Names lists the factors that fired.
func (a RiskAssessment) Names() []string {
	out := make([]string, 0, len(a.Factors))
	for _, f := range a.Factors {
		out = append(out, f.Name)
	}
	return out
}
