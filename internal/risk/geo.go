package risk

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/oschwald/geoip2-golang/v2"
)

// Locator finds where an IP address is. Lookups are in memory and fast.
type Locator interface {
	// Locate answers false when the address is not in the database.
	Locate(ip netip.Addr) (gatehouse.Location, bool)
}

// GeoIP is a Locator over a MaxMind-format city database (.mmdb).
type GeoIP struct{ r *geoip2.Reader }

var _ Locator = (*GeoIP)(nil)

// OpenGeoIP opens a city database file (GATEHOUSE_GEOIP_DB).
func OpenGeoIP(path string) (*GeoIP, error) {
	r, err := geoip2.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: open %s: %w", path, err)
	}
	return &GeoIP{r: r}, nil
}

// Locate implements Locator.
func (g *GeoIP) Locate(ip netip.Addr) (gatehouse.Location, bool) {
	if !ip.IsValid() {
		return gatehouse.Location{}, false
	}
	c, err := g.r.City(ip.Unmap())
	if err != nil || c == nil || c.Country.ISOCode == "" {
		return gatehouse.Location{}, false
	}
	l := gatehouse.Location{Country: c.Country.ISOCode, City: c.City.Names.English}
	if c.Location.Latitude != nil && c.Location.Longitude != nil {
		l.Lat, l.Lon, l.HasCoords = *c.Location.Latitude, *c.Location.Longitude, true
	}
	return l, true
}

// Close releases the database.
func (g *GeoIP) Close() error { return g.r.Close() }

// DistanceKm is the great-circle distance between two points (haversine,
// mean Earth radius).
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const earthRadiusKm = 6371.0
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	dLat, dLon := rad(lat2-lat1), rad(lon2-lon1)
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(lat1))*math.Cos(rad(lat2))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
