package gatehouse

import "time"

// Webhook is a stored webhook subscription.
type Webhook struct {
	ID     string
	UserID string // the owner
	URL    string
	// Events are event type names, or "*" for every type.
	Events      []string
	Description string
	Active      bool
	// AllUsers makes it receive every user's events, not only the owner's.
	AllUsers bool
	// SecretEnc is the signing secret sealed with the master key.
	SecretEnc []byte
	// FailingSince is when the current run of failed attempts began; nil
	// while deliveries succeed.
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Webhook delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event sent (or to be sent) to one webhook.
type WebhookDelivery struct {
	ID        string
	WebhookID string
	EventID   string
	EventType string
	// Payload is the exact JSON body sent on every attempt.
	Payload        []byte
	Status         string // DeliveryPending, DeliverySucceeded or DeliveryFailed
	Attempts       int
	ResponseStatus int // of the last attempt; 0 when none answered
	LastError      string
	CreatedAt      time.Time
	NextAttemptAt  *time.Time
	DeliveredAt    *time.Time
	// History is every attempt, oldest first (filled on reads).
	History []WebhookAttempt
}

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	DeliveryID     string
	Attempt        int // 1, 2, ... per delivery
	StartedAt      time.Time
	Duration       time.Duration // stored in milliseconds
	ResponseStatus int           // 0 when no answer came
	Error          string
}
