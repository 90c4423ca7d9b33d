package app

import (
	"context"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/web"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// pageWebhooks is the webhook service as the admin console uses it.
type pageWebhooks struct{ *webhook.Service }

// SetActive turns the user's webhook on or off, as PUT /webhooks/{id}
// with only active does.
func (w pageWebhooks) SetActive(ctx context.Context, userID, id string, active bool) (gatehouse.Webhook, error) {
	return w.Update(ctx, userID, id, webhook.Input{Active: &active})
}

// auditChain walks the audit chain for the admin console.
func auditChain(st audit.ChainReader) func(ctx context.Context) (web.ChainStatus, error) {
	return func(ctx context.Context) (web.ChainStatus, error) {
		rep, err := audit.Verify(ctx, st, 0)
		if err != nil {
			return web.ChainStatus{}, err
		}
		s := web.ChainStatus{Checked: rep.Checked, Unchained: rep.Unchained, FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq, Head: rep.Head}
		if b := rep.Break; b != nil {
			s.Broken, s.BrokenSeq, s.BrokenID, s.Problem = true, b.Seq, b.ID, b.Problem
		}
		return s, nil
	}
}
