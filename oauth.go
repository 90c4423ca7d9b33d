package gatehouse

import "time"

// OAuthAccount links a user to an account at an external identity
// provider, identified by (Provider, Subject), never by email.
type OAuthAccount struct {
	ID       string
	UserID   string
	Provider string // "google", "github", "microsoft" or a configured name
	Subject  string // the provider's stable user id (sub)
	// Email is the address the provider reported at linking, for display.
	Email     string
	CreatedAt time.Time
}
