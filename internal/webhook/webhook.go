// Package webhook lets a user subscribe an HTTP endpoint to the events of
// their account (and, with the webhooks:all permission, of every account)
// and delivers those events following the Standard Webhooks specification:
// a JSON body {id, type, timestamp, data}, signed with HMAC-SHA256 over
// "id.timestamp.body" in the webhook-signature header.
//
// Delivery is two steps, each a River job in the transaction that causes
// it: the event worker calls FanOut, which writes one delivery row and one
// delivery job per subscribed webhook; the delivery job POSTs the body,
// records the attempt, and retries with exponential backoff and jitter.
// Connections are checked at dial time against loopback, private and
// reserved addresses (see Blocked), redirects are not followed, a 410
// answer disables the webhook, and a webhook failing for days is disabled
// and its owner emailed.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// PermissionAll lets its holder create webhooks that receive every user's
// events.
const PermissionAll = "webhooks:all"

// AllEvents subscribes a webhook to every event type.
const AllEvents = "*"

// SecretPrefix starts every signing secret, as Standard Webhooks suggests.
const SecretPrefix = "whsec_"

// Defaults of Options.
const (
	DefaultMaxAttempts  = 8
	DefaultDisableAfter = 5 * 24 * time.Hour
	defaultTimeout      = 10 * time.Second
	maxEvents           = 64
	maxDescription      = 500
)

// MaxWebhooksPerUser caps how many webhooks one user may own, active or
// not: each event fans out to every subscribed webhook, so without a cap
// one account could turn a single sign-in into thousands of POSTs to one
// URL. Inactive webhooks count too, or switching them back on would
// bypass the cap.
const MaxWebhooksPerUser = 25

// Store is what the service needs from the database.
type Store interface {
	store.Webhooks
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Authorizer answers permission checks (an *authz.Checker).
type Authorizer interface {
	Can(ctx context.Context, userID, perm string) (bool, error)
}

// Options tune the service; zero values take the defaults.
type Options struct {
	// AllowPrivate lets webhooks reach loopback and private addresses
	// (GATEHOUSE_WEBHOOK_ALLOW_PRIVATE; development and tests).
	AllowPrivate bool
	// MaxAttempts per delivery job (default 8).
	MaxAttempts int
	// Backoff is the delay before retrying after the given failed attempt
	// (1-based), before jitter; default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Timeout bounds one HTTP attempt (default 10 s).
	Timeout time.Duration
	// DisableAfter is how long a webhook may fail without a success before
	// it is disabled and its owner emailed (default five days).
	DisableAfter time.Duration
	// DisabledTemplate is the email template sent then (required to email).
	DisabledTemplate string
	// BreakerThreshold is how many consecutive failed attempts (no answer
	// or 5xx) to one host open its circuit (default 5); BreakerOpen is how
	// long it then stays open (default one minute). See breakers.
	BreakerThreshold uint32
	BreakerOpen      time.Duration
	// Metrics counts attempts in gatehouse_webhook_deliveries_total (nil:
	// none).
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Service manages webhooks and delivers their events.
type Service struct {
	store    Store
	jobs     jobs.Inserter
	box      secret.Sealer
	authz    Authorizer
	mail     store.Mailer
	opts     Options
	backoff  atomic.Pointer[func(int) time.Duration]
	client   *httpClient
	breakers atomic.Pointer[breakers]
}

// New makes the service, which enqueues deliveries with ins, emails
// owners with mail (nil: no email) and checks who may subscribe to every
// user's events with az. Add its worker with Register and its fan-out with
// Bus.Handle.
func New(st Store, box secret.Sealer, ins jobs.Inserter, mail store.Mailer, az Authorizer, o Options) *Service {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = DefaultDisableAfter
	}
	if o.BreakerThreshold == 0 {
		o.BreakerThreshold = DefaultBreakerThreshold
	}
	if o.BreakerOpen <= 0 {
		o.BreakerOpen = DefaultBreakerOpen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{store: st, box: box, jobs: ins, mail: mail, authz: az, opts: o, client: newHTTPClient(o.AllowPrivate, o.Timeout)}
	s.breakers.Store(newBreakers(o.BreakerThreshold, o.BreakerOpen))
	s.backoff.Store(&o.Backoff)
	return s
}

// SetBackoff replaces Options.Backoff while running, so end-to-end tests
// need not wait for real backoff.
func (s *Service) SetBackoff(f func(attempt int) time.Duration) { s.backoff.Store(&f) }

// Input is what a user sets on a webhook; nil pointers keep the current
// value on update (and take the default on create).
type Input struct {
	URL         *string
	Events      *[]string
	Description *string
	Active      *bool
	AllUsers    *bool
}

// Create adds a webhook for userID and returns it with its signing secret,
// which is shown this once and stored only sealed. A user who already owns
// MaxWebhooksPerUser webhooks gets a conflict.
func (s *Service) Create(ctx context.Context, userID string, in Input) (gatehouse.Webhook, string, error) {
	switch {
	case in.URL == nil:
		return gatehouse.Webhook{}, "", gatehouse.InvalidField("url", "url is required")
	case in.Events == nil:
		return gatehouse.Webhook{}, "", gatehouse.InvalidField("events", "events is required")
	}
	now := s.opts.Now().UTC()
	w := gatehouse.Webhook{ID: gatehouse.NewID(), UserID: userID, Active: true, CreatedAt: now, UpdatedAt: now}
	if err := s.apply(ctx, &w, in); err != nil {
		return gatehouse.Webhook{}, "", err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return gatehouse.Webhook{}, "", fmt.Errorf("webhook secret: %w", err)
	}
	w.SecretEnc = s.box.Seal(key, secretAD(w.ID))
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		// Lock the owner (PostgreSQL; SQLite write transactions are
		// already serialised) so concurrent creations cannot both pass
		// the count. An unknown owner is CreateWebhook's to refuse.
		if _, err := tx.GetUserForUpdate(ctx, userID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		owned, err := tx.ListWebhooks(ctx, userID, "", MaxWebhooksPerUser)
		if err != nil {
			return err
		}
		if len(owned) >= MaxWebhooksPerUser {
			return gatehouse.Errorf(gatehouse.CodeConflict, "a user may have at most %d webhooks; delete one first", MaxWebhooksPerUser)
		}
		if err := tx.CreateWebhook(ctx, w); err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		return nil
	})
	if err != nil {
		return gatehouse.Webhook{}, "", err
	}
	return w, SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// apply validates in and writes it onto w.
func (s *Service) apply(ctx context.Context, w *gatehouse.Webhook, in Input) error {
	if in.URL != nil {
		u, err := ValidateURL(*in.URL, s.opts.AllowPrivate)
		if err != nil {
			return err
		}
		w.URL = u.String()
	}
	if in.Events != nil {
		events, err := validEvents(*in.Events)
		if err != nil {
			return err
		}
		w.Events = events
	}
	if in.Description != nil {
		if len(*in.Description) > maxDescription || strings.ContainsRune(*in.Description, 0) {
			return gatehouse.InvalidField("description", fmt.Sprintf("must be at most %d bytes, without NUL characters", maxDescription))
		}
		w.Description = *in.Description
	}
	if in.Active != nil {
		w.Active = *in.Active
	}
	if in.AllUsers != nil && *in.AllUsers && !w.AllUsers {
		ok, err := s.authz.Can(ctx, w.UserID, PermissionAll)
		if err != nil {
			return gatehouse.WrapError(gatehouse.CodeUnavailable, err, "permissions could not be checked; try again")
		}
		if !ok {
			return gatehouse.Errorf(gatehouse.CodePermissionDenied, "all_users needs the %s permission", PermissionAll)
		}
	}
	if in.AllUsers != nil {
		w.AllUsers = *in.AllUsers
	}
	return nil
}

// validEvents checks event type names against the catalogue (or "*") and
// drops repeats, keeping the order.
func validEvents(events []string) ([]string, error) {
	if len(events) == 0 || len(events) > maxEvents {
		return nil, gatehouse.InvalidField("events", fmt.Sprintf("must list 1 to %d event types", maxEvents))
	}
	out := make([]string, 0, len(events))
	for i, e := range events {
		if e != AllEvents && !gatehouse.EventType(e).Valid() {
			return nil, gatehouse.InvalidField(fmt.Sprintf("events[%d]", i), "unknown event type; see GET /webhooks/event-types")
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Subscribed reports whether w receives events of type t.
func Subscribed(w gatehouse.Webhook, t gatehouse.EventType) bool {
	return slices.Contains(w.Events, AllEvents) || slices.Contains(w.Events, string(t))
}

var errNotFound = gatehouse.Errorf(gatehouse.CodeNotFound, "no such webhook")

// Get returns the user's webhook; somebody else's is not_found.
func (s *Service) Get(ctx context.Context, userID, id string) (gatehouse.Webhook, error) {
	w, err := s.store.GetWebhook(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.UserID != userID) {
		return gatehouse.Webhook{}, errNotFound
	}
	return w, err
}

// List returns a page of the user's webhooks in creation order.
func (s *Service) List(ctx context.Context, userID, after string, limit int) ([]gatehouse.Webhook, error) {
	return s.store.ListWebhooks(ctx, userID, after, limit)
}

// Update changes the user's webhook. Turning it back on forgets its past
// failures, so it gets the full grace period again.
func (s *Service) Update(ctx context.Context, userID, id string, in Input) (gatehouse.Webhook, error) {
	w, err := s.Get(ctx, userID, id)
	if err != nil {
		return gatehouse.Webhook{}, err
	}
	wasActive := w.Active
	if err := s.apply(ctx, &w, in); err != nil {
		return gatehouse.Webhook{}, err
	}
	w.UpdatedAt = s.opts.Now().UTC()
	if err := s.store.UpdateWebhook(ctx, w); err != nil {
		return gatehouse.Webhook{}, fmt.Errorf("update webhook: %w", err)
	}
	if w.Active && !wasActive {
		if err := s.store.ClearWebhookFailing(ctx, w.ID); err != nil {
			return gatehouse.Webhook{}, err
		}
		w.FailingSince = nil
	}
	return w, nil
}

// Delete removes the user's webhook with its deliveries; queued delivery
// jobs then find nothing and stop.
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	if _, err := s.Get(ctx, userID, id); err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// Deliveries returns a page of the user's webhook's deliveries, newest
// first, each with its attempts.
func (s *Service) Deliveries(ctx context.Context, userID, webhookID, before string, limit int) ([]gatehouse.WebhookDelivery, error) {
	if _, err := s.Get(ctx, userID, webhookID); err != nil {
		return nil, err
	}
	return s.store.ListWebhookDeliveries(ctx, webhookID, before, limit)
}

// Retry sends a delivery again, with the same webhook-id, as a new job with
// a fresh set of attempts. A pending delivery (a job is already at it) and
// an inactive webhook are conflicts.
func (s *Service) Retry(ctx context.Context, userID, webhookID, deliveryID string) (gatehouse.WebhookDelivery, error) {
	w, err := s.Get(ctx, userID, webhookID)
	if err != nil {
		return gatehouse.WebhookDelivery{}, err
	}
	if !w.Active {
		return gatehouse.WebhookDelivery{}, gatehouse.Errorf(gatehouse.CodeConflict, "the webhook is not active; activate it first")
	}
	var d gatehouse.WebhookDelivery
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		d, err = tx.GetWebhookDelivery(ctx, deliveryID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && d.WebhookID != w.ID) {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no such delivery")
		}
		if err != nil {
			return err
		}
		if d.Status == gatehouse.DeliveryPending {
			return gatehouse.Errorf(gatehouse.CodeConflict, "the delivery is still pending")
		}
		now := s.opts.Now().UTC()
		d.Status, d.NextAttemptAt = gatehouse.DeliveryPending, &now
		if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, d.ID)
	})
	return d, err
}

func (s *Service) enqueue(ctx context.Context, tx store.Tx, deliveryID string) error {
	return s.jobs.InsertTx(ctx, tx, DeliverArgs{DeliveryID: deliveryID}, &river.InsertOpts{MaxAttempts: s.opts.MaxAttempts})
}

// secretAD binds a sealed secret to its webhook.
func secretAD(id string) []byte { return []byte("webhook-secret:" + id) }

// SealedColumn is where webhook signing secrets are kept sealed, for master
// key rotation.
func SealedColumn() secret.Column {
	return secret.Column{Table: "webhooks", Name: "secret_enc", ID: "id",
		Rewrite: secret.Plain(func(row []string) []byte { return secretAD(row[0]) })}
}
