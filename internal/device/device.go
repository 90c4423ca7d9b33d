// Package device keeps the devices users sign in from: one per user per
// fingerprint (see Fingerprint), registered at each sign-in with when and
// from where it was first and last seen. A device new to an account emits
// device.new and emails the user (except on the account's first sign-in);
// users list their devices, trust them
// (which raises their sessions' trust score) and remove them, which ends
// every session from the device at once. A periodic job removes devices
// unused for a configurable age.
package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Store is what devices need from the database.
type Store interface {
	ListDevices(ctx context.Context, userID string) ([]gatehouse.Device, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Sessions ends a device's sessions (a *session.Service).
type Sessions interface {
	// RevokeDeviceTx revokes the device's sessions inside tx, recording
	// each; the caller passes the ids to Forget once tx commits.
	RevokeDeviceTx(ctx context.Context, tx store.Tx, userID, deviceID, reason string) ([]string, error)
	Forget(ctx context.Context, ids ...string)
}

// DefaultMaxAge is how long an unused device is kept (90 days).
const DefaultMaxAge = 90 * 24 * time.Hour

// Options tune devices.
type Options struct {
	// MaxAge removes devices unused this long (default DefaultMaxAge).
	MaxAge      time.Duration
	ServiceName string
	Now         func() time.Time
	Logger      *slog.Logger
}

// Service manages devices.
type Service struct {
	store    Store
	sessions Sessions
	events   store.Emitter
	mail     store.Mailer
	opts     Options
}

// New makes a Service.
func New(st Store, sess Sessions, ev store.Emitter, m store.Mailer, o Options) *Service {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{store: st, sessions: sess, events: ev, mail: m, opts: o}
}

// Sighting is one sign-in from a device.
type Sighting struct {
	Fingerprint string
	UserAgent   string
	IP          string
	// Location is where the IP is ("Berlin, DE"); may be empty.
	Location string
	// Announce emits device.new and emails the user when the device is
	// new; false on an account's first sign-in, whose device is no news.
	Announce bool
}

var errNoDevice = gatehouse.Errorf(gatehouse.CodeNotFound, "no such device")

// RegisterTx records a sign-in from the device inside tx, creating the
// device when the user has none with this fingerprint. A new device, when
// sg.Announce, emits device.new and, unless the user's preferences turn it
// off, emails the user. It reports whether the device is new.
func (s *Service) RegisterTx(ctx context.Context, tx store.Tx, u gatehouse.User, sg Sighting) (gatehouse.Device, bool, error) {
	now := s.opts.Now().UTC()
	ua := fingerprint.ParseUA(sg.UserAgent)
	d, created, err := tx.UpsertDevice(ctx, gatehouse.Device{
		ID: gatehouse.NewID(), UserID: u.ID, Fingerprint: sg.Fingerprint, Name: ua.Name(),
		UserAgent: strings.ToValidUTF8(sg.UserAgent[:min(len(sg.UserAgent), 512)], ""), FirstSeenAt: now, LastSeenAt: now, LastIP: sg.IP,
	})
	if err != nil || !created || !sg.Announce {
		return d, created, err
	}
	if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventDeviceNew, UserID: u.ID, ActorID: u.ID, CreatedAt: now,
		Data: map[string]any{"device_id": d.ID, "name": d.Name, "ip_address": sg.IP, "user_agent": d.UserAgent, "location": sg.Location}}); err != nil {
		return d, true, err
	}
	if !gatehouse.WantsNotification(u.NotificationPreferences, gatehouse.NotifyNewDeviceLogin, gatehouse.ChannelEmail) {
		return d, true, nil
	}
	return d, true, s.mail.SendTx(ctx, tx, u.Email.String(), gatehouse.MailTemplateNewDevice, MailData(u, d.Name, sg.IP, sg.Location, now))
}

// MailData is the new_device email's data for a sign-in.
func MailData(u gatehouse.User, device, ip, location string, now time.Time) map[string]any {
	var details []string
	if location != "" {
		details = append(details, "Location: "+location)
	}
	return map[string]any{gatehouse.MailKeyName: u.Name, gatehouse.MailKeyTitle: device, gatehouse.MailKeyDetails: details, gatehouse.MailKeyIP: ip, gatehouse.MailKeyTime: now}
}

// List returns the user's devices, most recently seen first.
func (s *Service) List(ctx context.Context, userID string) ([]gatehouse.Device, error) {
	list, err := s.store.ListDevices(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return list, nil
}

// own reads one of the user's devices for update; another user's device
// is not_found, so ids cannot be probed.
func own(ctx context.Context, tx store.Tx, userID, id string) (gatehouse.Device, error) {
	d, err := tx.GetDevice(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.UserID != userID) {
		return gatehouse.Device{}, errNoDevice
	}
	return d, err
}

// SetTrusted marks one of the user's devices trusted or not. Sessions from
// a trusted device score higher from their next refresh or sign-in.
func (s *Service) SetTrusted(ctx context.Context, userID, id string, trusted bool) (gatehouse.Device, error) {
	var d gatehouse.Device
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if d, err = own(ctx, tx, userID, id); err != nil {
			return err
		}
		d.Trusted = trusted
		return tx.SetDeviceTrusted(ctx, id, trusted)
	})
	return d, err
}

// Remove deletes one of the user's devices and ends every session from
// it: revoked and recorded in the transaction, deny-listed once it
// commits, so their access tokens stop at once.
func (s *Service) Remove(ctx context.Context, userID, id string) error {
	var ended []string
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := own(ctx, tx, userID, id); err != nil {
			return err
		}
		var err error
		if ended, err = s.sessions.RevokeDeviceTx(ctx, tx, userID, id, "device_removed"); err != nil {
			return err
		}
		return tx.DeleteDevice(ctx, id)
	})
	if err != nil {
		return err
	}
	s.sessions.Forget(ctx, ended...)
	return nil
}

// CleanupArgs is the periodic job that removes unused devices.
type CleanupArgs struct{}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return "device.cleanup" }

// InsertOpts puts the cleanup on the maintenance queue, one at a time.
func (CleanupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// CleanupWorker runs CleanupArgs: it removes devices last seen more than
// MaxAge ago, ending any session still naming one.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	Service *Service
}

// Work removes the stale devices in one transaction.
func (w *CleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	s := w.Service
	cutoff := s.opts.Now().UTC().Add(-s.opts.MaxAge)
	var removed []gatehouse.Device
	var ended []string
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if removed, err = tx.DeleteStaleDevices(ctx, cutoff); err != nil {
			return err
		}
		for _, d := range removed {
			ids, err := s.sessions.RevokeDeviceTx(ctx, tx, d.UserID, d.ID, "device_expired")
			if err != nil {
				return err
			}
			ended = append(ended, ids...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cleanup devices: %w", err)
	}
	s.sessions.Forget(ctx, ended...)
	if len(removed) > 0 {
		s.opts.Logger.InfoContext(ctx, "cleanup", "devices_deleted", len(removed), "sessions_ended", len(ended))
	}
	return nil
}

// CleanupPeriodic schedules the device cleanup daily (and once at start).
func CleanupPeriodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(24*time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
