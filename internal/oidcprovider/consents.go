package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// ConsentStore is what consent management needs from the database.
type ConsentStore interface {
	ListConsents(ctx context.Context, userID string) ([]gatehouse.Consent, error)
	GetClient(ctx context.Context, id string) (gatehouse.Client, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Consents lists and revokes users' consents to clients.
type Consents struct {
	store    ConsentStore
	events   store.Emitter
	sessions SessionRevoker
	now      func() time.Time
}

// NewConsents makes the consent manager.
func NewConsents(st ConsentStore, ev store.Emitter, sessions SessionRevoker, now func() time.Time) *Consents {
	if now == nil {
		now = time.Now
	}
	return &Consents{store: st, events: ev, sessions: sessions, now: now}
}

// ConsentView is a consent with its client's name.
type ConsentView = struct {
	gatehouse.Consent
	ClientName string
}

// List returns the user's consents with their clients' names.
func (c *Consents) List(ctx context.Context, userID string) ([]ConsentView, error) {
	list, err := c.store.ListConsents(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	out := make([]ConsentView, 0, len(list))
	for _, con := range list {
		cl, err := c.store.GetClient(ctx, con.ClientID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, ConsentView{Consent: con, ClientName: cl.Name})
	}
	return out, nil
}

// Revoke forgets the user's consent to the client and ends the client's
// sessions of the user, so its refresh tokens stop working too.
func (c *Consents) Revoke(ctx context.Context, userID, clientID string) error {
	var ended []string
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		err := tx.DeleteConsent(ctx, userID, clientID)
		if errors.Is(err, store.ErrNotFound) {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no consent to that client")
		}
		if err != nil {
			return err
		}
		grants, err := tx.ListClientGrants(ctx, clientID, userID)
		if err != nil {
			return err
		}
		if ended, err = revokeGrants(ctx, tx, c.sessions, grants, "consent_revoked"); err != nil {
			return err
		}
		if c.events == nil {
			return nil
		}
		_, err = c.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventClientConsentRevoked, UserID: userID, ActorID: userID,
			Data: map[string]any{"client_id": clientID}})
		return err
	})
	if err == nil && c.sessions != nil {
		c.sessions.Forget(ctx, ended...)
	}
	return err
}
