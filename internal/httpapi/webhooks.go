package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// TagWebhooks groups webhook operations.
const TagWebhooks = "Webhooks"

// Webhooks manages a user's webhooks (a *webhook.Service). Somebody else's
// webhook is not_found.
type Webhooks interface {
	Create(ctx context.Context, userID string, in webhook.Input) (gatehouse.Webhook, string, error)
	List(ctx context.Context, userID, after string, limit int) ([]gatehouse.Webhook, error)
	Get(ctx context.Context, userID, id string) (gatehouse.Webhook, error)
	Update(ctx context.Context, userID, id string, in webhook.Input) (gatehouse.Webhook, error)
	Delete(ctx context.Context, userID, id string) error
	Deliveries(ctx context.Context, userID, webhookID, before string, limit int) ([]gatehouse.WebhookDelivery, error)
	Retry(ctx context.Context, userID, webhookID, deliveryID string) (gatehouse.WebhookDelivery, error)
}

// Webhook is the API's view of a webhook.
type Webhook struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events" doc:"Event types delivered; \"*\" means all."`
	Active       bool       `json:"active"`
	Description  string     `json:"description"`
	AllUsers     bool       `json:"all_users" doc:"Receives every user's events, not only the owner's (needs webhooks:all)."`
	FailingSince *time.Time `json:"failing_since" doc:"When the current run of failed deliveries began; null while healthy. After five days the webhook is disabled."`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

func webhookBody(w gatehouse.Webhook) Webhook {
	out := Webhook{ID: w.ID, URL: w.URL, Events: w.Events, Active: w.Active, Description: w.Description,
		AllUsers: w.AllUsers, CreatedAt: w.CreatedAt.UTC(), UpdatedAt: w.UpdatedAt.UTC()}
	if w.FailingSince != nil {
		t := w.FailingSince.UTC()
		out.FailingSince = &t
	}
	return out
}

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	Attempt        int       `json:"attempt"`
	StartedAt      time.Time `json:"started_at"`
	DurationMS     int64     `json:"duration_ms"`
	ResponseStatus *int      `json:"response_status" doc:"Null when no answer came (timeout, refused connection)."`
	Error          *string   `json:"error"`
}

// WebhookDelivery is the API's view of one event sent to one webhook.
type WebhookDelivery struct {
	ID             string           `json:"id"`
	EventID        string           `json:"event_id" doc:"Also the webhook-id header, the same on every attempt."`
	EventType      string           `json:"event_type"`
	Status         string           `json:"status" enum:"pending,succeeded,failed"`
	Attempts       int              `json:"attempts"`
	ResponseStatus *int             `json:"response_status" doc:"HTTP status of the last attempt; null when none answered."`
	LastError      *string          `json:"last_error"`
	CreatedAt      time.Time        `json:"created_at"`
	NextAttemptAt  *time.Time       `json:"next_attempt_at"`
	DeliveredAt    *time.Time       `json:"delivered_at"`
	History        []WebhookAttempt `json:"history" doc:"Every attempt, oldest first."`
}

func optInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func optTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func deliveryBody(d gatehouse.WebhookDelivery) WebhookDelivery {
	out := WebhookDelivery{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, Attempts: d.Attempts,
		ResponseStatus: optInt(d.ResponseStatus), LastError: optString(d.LastError), CreatedAt: d.CreatedAt.UTC(),
		NextAttemptAt: optTime(d.NextAttemptAt), DeliveredAt: optTime(d.DeliveredAt),
		History: make([]WebhookAttempt, 0, len(d.History))}
	for _, a := range d.History {
		out.History = append(out.History, WebhookAttempt{Attempt: a.Attempt, StartedAt: a.StartedAt.UTC(),
			DurationMS: a.Duration.Milliseconds(), ResponseStatus: optInt(a.ResponseStatus), Error: optString(a.Error)})
	}
	return out
}

type webhookOutput struct {
	Body Webhook
}

type webhookCreated struct {
	Status int
	Body   struct {
		Webhook
		Secret string `json:"secret" doc:"whsec_ + base64 of 32 random bytes: the HMAC key is the decoded bytes. Shown only here."`
	}
}

type webhookList struct {
	Body struct {
		Items      []Webhook `json:"items"`
		NextCursor *string   `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

type deliveryList struct {
	Body struct {
		Items      []WebhookDelivery `json:"items"`
		NextCursor *string           `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

type deliveryOutput struct {
	Status int
	Body   WebhookDelivery
}

type webhookIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

type pageInput struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
	Cursor string `query:"cursor" maxLength:"200"`
}

// webhookFields is the update body: every field optional.
type webhookFields struct {
	URL         *string   `json:"url,omitempty" maxLength:"2048" doc:"http or https; loopback, private and reserved addresses are refused."`
	Events      *[]string `json:"events,omitempty" minItems:"1" maxItems:"64" doc:"Event types (see GET /webhooks/event-types), or \"*\" for all."`
	Description *string   `json:"description,omitempty" maxLength:"500"`
	Active      *bool     `json:"active,omitempty" doc:"Default true. Turning a webhook back on resets its failure record."`
	AllUsers    *bool     `json:"all_users,omitempty" doc:"Receive every user's events; needs the webhooks:all permission. Default false."`
}

func (f webhookFields) input() webhook.Input {
	return webhook.Input{URL: f.URL, Events: f.Events, Description: f.Description, Active: f.Active, AllUsers: f.AllUsers}
}

type eventTypesOutput struct {
	Body struct {
		Items []string `json:"items"`
	}
}

// pageOf turns up to limit+1 rows into one page of API items and the cursor
// of the next page (nil when there is none).
func pageOf[R, I any](rows []R, limit int, body func(R) I, id func(R) string) ([]I, *string) {
	var next *string
	if len(rows) > limit {
		rows = rows[:limit]
		c := encodeCursor(id(rows[len(rows)-1]))
		next = &c
	}
	items := make([]I, 0, len(rows))
	for _, r := range rows {
		items = append(items, body(r))
	}
	return items, next
}

var errNoWebhook = gatehouse.Errorf(gatehouse.CodeNotFound, "no such webhook")

func (s *Server) registerWebhooks() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "create-webhook", Method: http.MethodPost, Path: "/webhooks", Tags: []string{TagWebhooks},
		Summary: "Create a webhook",
		Description: "Subscribes a URL to events about the caller's account. Deliveries follow Standard Webhooks: " +
			"a JSON body {id, type, timestamp, data} and headers webhook-id, webhook-timestamp and " +
			"webhook-signature (v1, base64 HMAC-SHA256 of \"id.timestamp.body\" keyed with the secret's bytes). " +
			"The secret is in this answer only. A user may own at most " + strconv.Itoa(webhook.MaxWebhooksPerUser) +
			" webhooks, active or not; one more is 409 conflict.",
		DefaultStatus: http.StatusCreated,
	}), func(ctx context.Context, in *struct {
		Body struct {
			URL         string   `json:"url" maxLength:"2048" doc:"http or https; loopback, private and reserved addresses are refused."`
			Events      []string `json:"events" minItems:"1" maxItems:"64" doc:"Event types (see GET /webhooks/event-types), or \"*\" for all."`
			Description *string  `json:"description,omitempty" maxLength:"500"`
			Active      *bool    `json:"active,omitempty" doc:"Default true."`
			AllUsers    *bool    `json:"all_users,omitempty" doc:"Receive every user's events; needs the webhooks:all permission. Default false."`
		}
	}) (*webhookCreated, error) {
		b := in.Body
		w, secret, err := s.webhooks.Create(ctx, mustPrincipal(ctx).UserID, webhook.Input{
			URL: &b.URL, Events: &b.Events, Description: b.Description, Active: b.Active, AllUsers: b.AllUsers})
		if err != nil {
			return nil, Problem(err)
		}
		out := &webhookCreated{Status: http.StatusCreated}
		out.Body.Webhook, out.Body.Secret = webhookBody(w), secret
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-webhooks", Method: http.MethodGet, Path: "/webhooks", Tags: []string{TagWebhooks},
		Summary: "List my webhooks", Description: "In creation order, a page at a time.",
	}), func(ctx context.Context, in *pageInput) (*webhookList, error) {
		after, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, Problem(err)
		}
		list, err := s.webhooks.List(ctx, mustPrincipal(ctx).UserID, after, in.Limit+1)
		if err != nil {
			return nil, Problem(err)
		}
		out := &webhookList{}
		out.Body.Items, out.Body.NextCursor = pageOf(list, in.Limit, webhookBody, func(w gatehouse.Webhook) string { return w.ID })
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-webhook-event-types", Method: http.MethodGet, Path: "/webhooks/event-types", Tags: []string{TagWebhooks},
		Summary: "List the event types a webhook can subscribe to",
	}), func(context.Context, *struct{}) (*eventTypesOutput, error) {
		out := &eventTypesOutput{}
		for _, t := range gatehouse.EventTypes {
			out.Body.Items = append(out.Body.Items, string(t))
		}
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "get-webhook", Method: http.MethodGet, Path: "/webhooks/{id}", Tags: []string{TagWebhooks},
		Summary: "Get one of my webhooks", Description: "404 for an unknown id or somebody else's.",
	}), func(ctx context.Context, in *webhookIDInput) (*webhookOutput, error) {
		if !idShaped(in.ID) {
			return nil, Problem(errNoWebhook)
		}
		w, err := s.webhooks.Get(ctx, mustPrincipal(ctx).UserID, in.ID)
		if err != nil {
			return nil, Problem(err)
		}
		return &webhookOutput{Body: webhookBody(w)}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "update-webhook", Method: http.MethodPut, Path: "/webhooks/{id}", Tags: []string{TagWebhooks},
		Summary: "Change one of my webhooks", Description: "Fields left out keep their value. The secret never changes.",
	}), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body webhookFields
	}) (*webhookOutput, error) {
		if !idShaped(in.ID) {
			return nil, Problem(errNoWebhook)
		}
		w, err := s.webhooks.Update(ctx, mustPrincipal(ctx).UserID, in.ID, in.Body.input())
		if err != nil {
			return nil, Problem(err)
		}
		return &webhookOutput{Body: webhookBody(w)}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "delete-webhook", Method: http.MethodDelete, Path: "/webhooks/{id}", Tags: []string{TagWebhooks},
		Summary: "Delete one of my webhooks", Description: "With its delivery records; nothing more is sent to it.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *webhookIDInput) (*noContent, error) {
		if !idShaped(in.ID) {
			return nil, Problem(errNoWebhook)
		}
		if err := s.webhooks.Delete(ctx, mustPrincipal(ctx).UserID, in.ID); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-webhook-deliveries", Method: http.MethodGet, Path: "/webhooks/{id}/deliveries", Tags: []string{TagWebhooks},
		Summary: "List a webhook's deliveries", Description: "Newest first, a page at a time, each with its attempts.",
	}), func(ctx context.Context, in *struct {
		ID     string `path:"id" maxLength:"64"`
		Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
		Cursor string `query:"cursor" maxLength:"200"`
	}) (*deliveryList, error) {
		if !idShaped(in.ID) {
			return nil, Problem(errNoWebhook)
		}
		before, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, Problem(err)
		}
		list, err := s.webhooks.Deliveries(ctx, mustPrincipal(ctx).UserID, in.ID, before, in.Limit+1)
		if err != nil {
			return nil, Problem(err)
		}
		out := &deliveryList{}
		out.Body.Items, out.Body.NextCursor = pageOf(list, in.Limit, deliveryBody, func(d gatehouse.WebhookDelivery) string { return d.ID })
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "retry-webhook-delivery", Method: http.MethodPost, Path: "/webhooks/{id}/deliveries/{delivery_id}/retry",
		Tags: []string{TagWebhooks}, Summary: "Send a delivery again",
		Description: "Queues the same event again, with the same webhook-id and a fresh set of attempts. " +
			"409 conflict while the delivery is still pending or the webhook is inactive.",
		DefaultStatus: http.StatusAccepted,
	}), func(ctx context.Context, in *struct {
		ID         string `path:"id" maxLength:"64"`
		DeliveryID string `path:"delivery_id" maxLength:"64"`
	}) (*deliveryOutput, error) {
		if !idShaped(in.ID) || !idShaped(in.DeliveryID) {
			return nil, Problem(gatehouse.Errorf(gatehouse.CodeNotFound, "no such delivery"))
		}
		d, err := s.webhooks.Retry(ctx, mustPrincipal(ctx).UserID, in.ID, in.DeliveryID)
		if err != nil {
			return nil, Problem(err)
		}
		return &deliveryOutput{Status: http.StatusAccepted, Body: deliveryBody(d)}, nil
	})
}
