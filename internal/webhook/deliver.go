package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// UserAgent is sent with every delivery.
const UserAgent = "Gatehouse-Webhooks"

// Payload is the body of every delivery (Standard Webhooks). Data is the
// event's data plus user_id and actor_id when the event has them.
type Payload struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// WantsEvent is FanOut's events.Interest: an active webhook subscribes to
// e, whoever owns it (FanOut checks the owner's permission).
func (s *Service) WantsEvent(ctx context.Context, tx store.Tx, e gatehouse.Event) (bool, error) {
	hooks, err := tx.ListSubscribers(ctx, e.UserID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(hooks, func(w gatehouse.Webhook) bool { return Subscribed(w, e.Type) }), nil
}

// FanOut is the events handler: inside the event worker's transaction it
// writes one delivery and enqueues one delivery job for every active
// webhook subscribed to the event's type whose owner is the event's user,
// or that receives every user's events and whose owner still holds
// webhooks:all. Register it with Bus.Handle.
func (s *Service) FanOut(ctx context.Context, tx store.Tx, e gatehouse.Event) error {
	hooks, err := tx.ListSubscribers(ctx, e.UserID)
	if err != nil {
		return err
	}
	var body []byte
	allowed := map[string]bool{} // owner id -> holds webhooks:all
	for _, w := range hooks {
		if !Subscribed(w, e.Type) {
			continue
		}
		if w.UserID != e.UserID {
			ok, seen := allowed[w.UserID]
			if !seen {
				perms, err := tx.UserPermissions(ctx, w.UserID)
				if err != nil {
					return err
				}
				ok = grantsAll(perms)
				allowed[w.UserID] = ok
			}
			if !ok {
				continue
			}
		}
		if body == nil {
			if body, err = payload(e); err != nil {
				return err
			}
		}
		now := s.opts.Now().UTC()
		d := gatehouse.WebhookDelivery{ID: gatehouse.NewID(), WebhookID: w.ID, EventID: e.ID, EventType: string(e.Type),
			Payload: body, Status: gatehouse.DeliveryPending, CreatedAt: now, NextAttemptAt: &now}
		if err := tx.CreateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, d.ID); err != nil {
			return err
		}
	}
	return nil
}

// grantsAll reports whether perms grant webhooks:all, wildcards included.
func grantsAll(perms []string) bool {
	for _, p := range perms {
		if p == "*" || p == "webhooks:*" || p == PermissionAll {
			return true
		}
	}
	return false
}

func payload(e gatehouse.Event) ([]byte, error) {
	data := make(map[string]any, len(e.Data)+2)
	for k, v := range e.Data {
		data[k] = v
	}
	for k, v := range map[string]string{"user_id": e.UserID, "actor_id": e.ActorID} {
		if _, set := data[k]; !set && v != "" {
			data[k] = v
		}
	}
	b, err := json.Marshal(Payload{ID: e.ID, Type: string(e.Type), Timestamp: e.CreatedAt.UTC(), Data: data})
	if err != nil {
		return nil, fmt.Errorf("webhook payload of event %s: %w", e.ID, err)
	}
	return b, nil
}

// Sign returns the webhook-signature header value for one message:
// "v1," and the base64 HMAC-SHA256, keyed with the secret's bytes, of
// "id.timestamp.body", timestamp in Unix seconds.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// DefaultBackoff waits 8 s after the first failure and four times longer
// after each next one (8 s, 32 s, about 2 min, 8.5 min, 34 min, 2.3 h,
// 9 h), capped at 12 hours; jitter then takes up to half of it off.
func DefaultBackoff(attempt int) time.Duration {
	d := 8 * time.Second * time.Duration(math.Pow(4, float64(max(attempt, 1)-1)))
	if d <= 0 || d > 12*time.Hour {
		return 12 * time.Hour
	}
	return d
}

// retryDelay is the jittered delay after a failed attempt, in [d/2, d]. The
// jitter is derived from the delivery and attempt, so Work (which records
// next_attempt_at) and NextRetry (which tells River) agree without state,
// while deliveries failing together still spread out.
func (s *Service) retryDelay(deliveryID string, attempt int) time.Duration {
	d := (*s.backoff.Load())(attempt)
	if d <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(deliveryID))
	_ = binary.Write(h, binary.BigEndian, int64(attempt))
	half := d / 2
	return half + time.Duration(h.Sum64()%uint64(half+1))
}

// DeliverArgs is the job that sends one delivery.
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "webhook.deliver" }

// InsertOpts routes deliveries to the webhooks queue.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueWebhooks, MaxAttempts: DefaultMaxAttempts}
}

// Register adds the delivery worker to a worker registry.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &worker{s: s})
}

type worker struct {
	river.WorkerDefaults[DeliverArgs]
	s *Service
}

// Timeout leaves room for the HTTP attempt and the bookkeeping around it.
func (w *worker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return w.s.opts.Timeout + 20*time.Second
}

// NextRetry follows Service.retryDelay in River's own clock.
func (w *worker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(w.s.retryDelay(job.Args.DeliveryID, job.Attempt))
}

func (w *worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	return w.s.deliver(ctx, job)
}

// attemptLabel is the gatehouse_webhook_deliveries_total result of an
// attempt.
func attemptLabel(res attemptResult) string {
	switch {
	case res.err == nil:
		return "success"
	case res.status == http.StatusGone:
		return "gone"
	default:
		return "failure"
	}
}

// attemptResult is what one HTTP attempt came to.
type attemptResult struct {
	status int
	err    error
}

// deliver makes one attempt of a delivery job and records it.
func (s *Service) deliver(ctx context.Context, job *river.Job[DeliverArgs]) error {
	log := s.opts.Logger.With("component", "webhook", "delivery_id", job.Args.DeliveryID, "attempt", job.Attempt)
	d, err := s.store.GetWebhookDelivery(ctx, job.Args.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(errors.New("delivery no longer exists (webhook deleted)"))
	}
	if err != nil {
		return err
	}
	w, err := s.store.GetWebhook(ctx, d.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(errors.New("webhook no longer exists"))
	}
	if err != nil {
		return err
	}
	if !w.Active {
		d.Status, d.LastError, d.NextAttemptAt = gatehouse.DeliveryFailed, "webhook disabled", nil
		if err := s.store.UpdateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		return river.JobCancel(errors.New("webhook disabled"))
	}
	key, err := s.box.Open(w.SecretEnc, secretAD(w.ID))
	if err != nil {
		return river.JobCancel(fmt.Errorf("webhook %s secret: %w", w.ID, err))
	}

	started := s.opts.Now().UTC()
	t0 := time.Now()
	res, err := s.send(ctx, w.URL, d.EventID, started.Unix(), d.Payload, key)
	if errors.Is(err, errHostDown) {
		// Nothing was sent, so no attempt is recorded and none counted.
		wait := s.snoozeFor(d.ID)
		next := started.Add(wait)
		d.NextAttemptAt = &next
		if err := s.store.UpdateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		log.DebugContext(ctx, "webhook host circuit open; delivery snoozed", "webhook_id", w.ID, "for", wait.String())
		return river.JobSnooze(wait)
	}
	a := gatehouse.WebhookAttempt{DeliveryID: d.ID, Attempt: d.Attempts + 1, StartedAt: started,
		Duration: time.Since(t0), ResponseStatus: res.status}
	if res.err != nil {
		a.Error = truncate(res.err.Error(), 500)
	}
	d.Attempts, d.ResponseStatus, d.LastError = a.Attempt, a.ResponseStatus, a.Error
	now := s.opts.Now().UTC()

	var outcome error // what Work returns after the bookkeeping commits
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateWebhookAttempt(ctx, a); err != nil {
			return err
		}
		tx.AfterCommit(func() { s.opts.Metrics.WebhookDelivery(attemptLabel(res)) })
		switch {
		case res.err == nil:
			d.Status, d.DeliveredAt, d.NextAttemptAt = gatehouse.DeliverySucceeded, &now, nil
			if err := tx.ClearWebhookFailing(ctx, w.ID); err != nil {
				return err
			}
			if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
				return err
			}
			return jobs.CompleteTx(ctx, tx, job)
		case res.status == http.StatusGone:
			d.Status, d.NextAttemptAt = gatehouse.DeliveryFailed, nil
			outcome = river.JobCancel(errors.New("receiver answered 410 Gone; webhook disabled"))
			if _, err := tx.DisableWebhook(ctx, w.ID, now); err != nil {
				return err
			}
			return tx.UpdateWebhookDelivery(ctx, d)
		}
		since, err := tx.MarkWebhookFailing(ctx, w.ID, now)
		if err != nil {
			return err
		}
		switch {
		case now.Sub(since) > s.opts.DisableAfter:
			d.Status, d.NextAttemptAt = gatehouse.DeliveryFailed, nil
			outcome = river.JobCancel(fmt.Errorf("webhook failing since %s; disabled", since.Format(time.RFC3339)))
			if err := s.disableForFailures(ctx, tx, w, since, now); err != nil {
				return err
			}
		case job.Attempt >= job.MaxAttempts:
			d.Status, d.NextAttemptAt = gatehouse.DeliveryFailed, nil
			outcome = res.err
		default:
			next := now.Add(s.retryDelay(d.ID, job.Attempt))
			d.NextAttemptAt = &next
			outcome = res.err
		}
		return tx.UpdateWebhookDelivery(ctx, d)
	})
	if err != nil {
		return err
	}
	if outcome != nil {
		log.InfoContext(ctx, "webhook delivery failed", "webhook_id", w.ID, "status", res.status, "error", a.Error)
	}
	return outcome
}

// disableForFailures turns the webhook off and emails its owner, once.
func (s *Service) disableForFailures(ctx context.Context, tx store.Tx, w gatehouse.Webhook, since, now time.Time) error {
	done, err := tx.DisableWebhook(ctx, w.ID, now)
	if err != nil || !done || s.mail == nil || s.opts.DisabledTemplate == "" {
		return err
	}
	owner, err := tx.GetUser(ctx, w.UserID)
	if err != nil {
		return err
	}
	return s.mail.SendTx(ctx, tx, string(owner.Email), s.opts.DisabledTemplate, map[string]any{
		"Name":    owner.Name,
		"Title":   w.URL,
		"Time":    since,
		"Details": []string{"Every delivery since then failed; the webhook has been disabled.", "Webhook id: " + w.ID},
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// httpClient sends deliveries: no proxy (it would connect for us, past the
// guard), no redirects, no cookies, a dialer that checks every address.
type httpClient struct {
	c *http.Client
}

func newHTTPClient(allowPrivate bool, timeout time.Duration) *httpClient {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           newDialer(allowPrivate).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &httpClient{c: &http.Client{
		Transport: telemetry.Transport(tr), // trace context out, a client span
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// post sends one signed attempt. Only a 2xx answer is success.
func (c *httpClient) post(ctx context.Context, url, id string, ts int64, body, key []byte) attemptResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(key, id, ts, body))
	resp, err := c.c.Do(req)
	if err != nil {
		// Not the *url.Error itself: it quotes the URL, which may carry a
		// token of the receiver's, and the error is stored and logged.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return attemptResult{err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return attemptResult{status: resp.StatusCode, err: fmt.Errorf("receiver answered %d", resp.StatusCode)}
	}
	return attemptResult{status: resp.StatusCode}
}
