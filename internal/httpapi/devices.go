package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
)

// TagDevices groups device operations.
const TagDevices = "Devices"

// Devices manages a user's devices (a *device.Service). Somebody else's
// device is not_found.
type Devices interface {
	List(ctx context.Context, userID string) ([]gatehouse.Device, error)
	SetTrusted(ctx context.Context, userID, id string, trusted bool) (gatehouse.Device, error)
	Remove(ctx context.Context, userID, id string) error
}

// Device is the API's view of a device.
type Device struct {
	ID          string    `json:"id"`
	Name        string    `json:"name" doc:"Browser and OS family, e.g. \"Firefox on Linux\"."`
	UserAgent   string    `json:"user_agent" doc:"The User-Agent of its latest sign-in."`
	Trusted     bool      `json:"trusted" doc:"Marked trusted by the user; raises the trust score of its sessions."`
	FirstSeenAt time.Time `json:"first_seen_at"`
	LastSeenAt  time.Time `json:"last_seen_at"`
	LastIP      string    `json:"last_ip"`
}

func deviceBody(d gatehouse.Device) Device {
	return Device{ID: d.ID, Name: d.Name, UserAgent: d.UserAgent, Trusted: d.Trusted,
		FirstSeenAt: d.FirstSeenAt.UTC(), LastSeenAt: d.LastSeenAt.UTC(), LastIP: d.LastIP}
}

type deviceOutput struct {
	Body Device
}

type deviceList struct {
	Body struct {
		Items      []Device `json:"items"`
		NextCursor *string  `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

func (s *Server) registerDevices() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-devices", Method: http.MethodGet, Path: "/devices", Tags: []string{TagDevices},
		Summary: "List my devices",
		Description: "Every device the account signed in from, most recently seen first (ties by id), a page at a time; " +
			"a cursor whose device has been removed since is 422 validation_failed: start again without it. A device is told apart by the " +
			"client's device_id at login, else the __Host-gh_device cookie (a random secret the server sets at sign-in), never by its " +
			"User-Agent: a sign-in with neither is a new device. " +
			"Devices unused for 90 days (GATEHOUSE_DEVICE_MAX_AGE) are removed.",
	}), func(ctx context.Context, in *pageInput) (*deviceList, error) {
		list, err := s.devices.List(ctx, mustPrincipal(ctx).UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &deviceList{}
		out.Body.Items, out.Body.NextCursor, err = pageList(list, in, deviceBody, func(d gatehouse.Device) string { return d.ID })
		if err != nil {
			return nil, Problem(err)
		}
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "trust-device", Method: http.MethodPut, Path: "/devices/{id}/trust", Tags: []string{TagDevices},
		Summary: "Trust or distrust one of my devices",
		Description: "Sessions from a trusted device get a higher trust score from their next refresh or sign-in. " +
			"The body is optional; trusted defaults to true. 404 for an unknown id or somebody else's.",
	}), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body *struct {
			Trusted *bool `json:"trusted,omitempty" doc:"Default true."`
		}
	}) (*deviceOutput, error) {
		trusted := true
		if in.Body != nil && in.Body.Trusted != nil {
			trusted = *in.Body.Trusted
		}
		d, err := s.devices.SetTrusted(ctx, mustPrincipal(ctx).UserID, in.ID, trusted)
		if err != nil {
			return nil, Problem(err)
		}
		return &deviceOutput{Body: deviceBody(d)}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "remove-device", Method: http.MethodDelete, Path: "/devices/{id}", Tags: []string{TagDevices},
		Summary:       "Remove one of my devices",
		Description:   "Every session from the device ends at once: its access and refresh tokens stop working. 404 for an unknown id or somebody else's.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*noContent, error) {
		if err := s.devices.Remove(ctx, mustPrincipal(ctx).UserID, in.ID); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})

	// The emailed link opens ConfirmSignInPage (internal/web), which
	// confirms only when the person presses its button, so mail scanners
	// that open links cannot confirm the sign-in. This operation does the
	// same for apps that serve their own page.
	huma.Register(s.api, huma.Operation{
		OperationID: "confirm-sign-in", Method: http.MethodPost, Path: "/auth/login/confirm", Tags: []string{TagAuth},
		Summary: "Confirm a risky sign-in",
		Description: "A sign-in whose risk score reaches GATEHOUSE_RISK_HIGH (or that comes from a blocklisted address) on an account " +
			"without MFA answers an MFAChallenge with methods [\"email_confirmation\"] and emails the user a link (single use, 15 minutes) " +
			"to the built-in page " + ConfirmSignInPage + "?token=..., which confirms (as this operation does) only when the person presses its button, " +
			"so a mail scanner that opens the link spends nothing. Posting it marks the held sign-in confirmed and answers 204: " +
			"no tokens go to whoever clicked. The client that signed in finishes its own sign-in with POST /auth/mfa/verify " +
			"{challenge_id, method: \"email_confirmation\"}. There is no GET: nothing spends the token by merely opening a URL. " +
			"Errors: 400 invalid_token (unknown, used or expired token, or a sign-in challenge that expired).",
		DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *struct {
		Body struct {
			Token string `json:"token" minLength:"1" maxLength:"256" doc:"The token from the emailed link."`
		}
	}) (*noContent, error) {
		if err := s.signIn.ConfirmLink(ctx, in.Body.Token); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})
}

// ConfirmSignInPage is the built-in page the step-up confirmation email
// links to (outside BasePath, like /magic-link).
const ConfirmSignInPage = "/confirm-sign-in"

// signInPaths are where a session can start; the device cookie is set on
// them when the browser has none.
var signInPaths = map[string]bool{
	BasePath + "/auth/login": true, BasePath + "/auth/mfa/verify": true,
	BasePath + "/auth/magic-link/verify": true, BasePath + "/auth/webauthn/authenticate/finish": true,
}

// deviceCookie passes the request's device cookie to sign-ins (through the
// context, see fingerprint.CookieFrom) and, on the sign-in routes, gives a
// browser without a valid one a long-lived cookie holding a fresh random
// secret (fingerprint.NewCookie), passed on to the sign-in too: the device that
// sign-in registers is the one the browser names with that cookie from
// then on, whatever its User-Agent becomes, and no other browser can name
// it. A request without a valid cookie is thus always a new device; an old
// cookie holding the public User-Agent fingerprint of earlier versions is
// replaced the same way (one new-device alert, see fingerprint.ValidCookie).
func deviceCookie(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := ""
		if c, err := r.Cookie(fingerprint.CookieName); err == nil && fingerprint.ValidCookie(c.Value) {
			v = c.Value
		}
		p := r.URL.Path
		// A HEAD signs nobody in (serveMux refuses it on sign-in GETs), so
		// it mints nothing either.
		if v == "" && r.Method != http.MethodHead && (signInPaths[p] || (strings.HasPrefix(p, BasePath+"/oauth/") && strings.HasSuffix(p, "/callback"))) {
			minted := fingerprint.NewCookie()
			http.SetCookie(w, &http.Cookie{
				Name: fingerprint.CookieName, Value: minted, Path: "/",
				MaxAge: fingerprint.CookieMaxAge, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
			})
			// A browser (it sends Fetch Metadata) keeps the cookie, so its
			// first sign-in already names the device by it. A client that
			// sends none may never send the cookie back: its device is
			// named by its User-Agent instead, or each of its sign-ins
			// would be a new device.
			if r.Header.Get("Sec-Fetch-Mode") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
				v = minted
			}
		}
		if v != "" {
			r = r.WithContext(fingerprint.WithCookie(r.Context(), v))
		}
		next.ServeHTTP(w, r)
	})
}
