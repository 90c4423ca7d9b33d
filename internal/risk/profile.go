package risk

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// Profile is what the engine remembers of a user's successful sign-ins,
// stored as JSON (store.Devices' login profile): the countries and cities
// seen, how many sign-ins fell in each UTC hour, and the last located one.
type Profile struct {
	Countries []string `json:"countries,omitempty"`
	Cities    []string `json:"cities,omitempty"` // "DE/Berlin"
	Hours     [24]int  `json:"hours"`
	Logins    int      `json:"logins"`
	Last      *Place   `json:"last,omitempty"`
}

// Place is a located sign-in.
type Place struct {
	Lat   float64   `json:"lat"`
	Lon   float64   `json:"lon"`
	At    time.Time `json:"at"`
	Place string    `json:"place"`
}

// Caps keep a profile small whatever the history.
const (
	maxCountries = 50
	maxCities    = 100
	// hourHistory is the sign-ins the hour counts keep about: past it they
	// halve, so old habits fade.
	hourHistory = 400
	// unusualAfter is the sign-ins needed before unusual_hour can fire.
	unusualAfter = 10
)

func cityKey(l gatehouse.Location) string { return l.Country + "/" + l.City }

// DecodeProfile reads a stored profile; nil or bad data is an empty one.
func DecodeProfile(raw []byte) Profile {
	var p Profile
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p)
	}
	return p
}

// Encode is the stored form.
func (p Profile) Encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

// Record adds a successful sign-in at now from loc (when located).
func (p *Profile) Record(now time.Time, loc gatehouse.Location, located bool) {
	now = now.UTC()
	p.Logins++
	p.Hours[now.Hour()]++
	if total := sum(p.Hours); total > hourHistory {
		for i := range p.Hours {
			p.Hours[i] /= 2
		}
	}
	if !located {
		return
	}
	if !slices.Contains(p.Countries, loc.Country) {
		p.Countries = appendCapped(p.Countries, loc.Country, maxCountries)
	}
	if loc.City != "" && !slices.Contains(p.Cities, cityKey(loc)) {
		p.Cities = appendCapped(p.Cities, cityKey(loc), maxCities)
	}
	if loc.HasCoords {
		p.Last = &Place{Lat: loc.Lat, Lon: loc.Lon, At: now, Place: loc.String()}
	}
}

// unusualHour: after enough sign-ins, none fell in this hour of the day
// or either neighbour.
func (p Profile) unusualHour(now time.Time) bool {
	if p.Logins < unusualAfter || sum(p.Hours) == 0 {
		return false
	}
	h := now.UTC().Hour()
	return p.Hours[(h+23)%24]+p.Hours[h]+p.Hours[(h+1)%24] == 0
}

func sum(h [24]int) int {
	n := 0
	for _, v := range h {
		n += v
	}
	return n
}

// appendCapped appends v, dropping the oldest entry beyond max.
func appendCapped(list []string, v string, max int) []string {
	list = append(list, v)
	if len(list) > max {
		list = list[len(list)-max:]
	}
	return list
}
