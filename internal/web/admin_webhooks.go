package web

import (
	"context"
	"net/http"

	"github.com/gatehouse-auth/gatehouse"
)

// AdminWebhooks are the webhooks of the console's user, with the API's
// rules (a *webhook.Service behind a small adapter): everyone manages only
// the webhooks they own, the ones that receive every user's events
// included (those need webhooks:all, which also opens this section).
type AdminWebhooks interface {
	List(ctx context.Context, userID, after string, limit int) ([]gatehouse.Webhook, error)
	Get(ctx context.Context, userID, id string) (gatehouse.Webhook, error)
	Deliveries(ctx context.Context, userID, webhookID, before string, limit int) ([]gatehouse.WebhookDelivery, error)
	Retry(ctx context.Context, userID, webhookID, deliveryID string) (gatehouse.WebhookDelivery, error)
	SetActive(ctx context.Context, userID, id string, active bool) (gatehouse.Webhook, error)
	Delete(ctx context.Context, userID, id string) error
}

// ChainStatus is what a walk of the audit log's hash chain found (see
// audit.Verify).
type ChainStatus struct {
	// Checked counts the chained rows checked, FirstSeq to LastSeq;
	// Unchained the older rows from before the chain existed.
	Checked, Unchained, FirstSeq, LastSeq int64
	// Head is the last row's hash.
	Head string
	// Broken names the first link that does not hold.
	Broken            bool
	BrokenSeq         int64
	BrokenID, Problem string
}

// webhookPerm opens the console's webhooks section: the permission the
// API asks for deployment-wide webhooks.
const webhookPerm = "webhooks:all"

func (p *Pages) registerAdminWebhooks(h registerFn) {
	h("GET /admin/webhooks", p.adminWebhooks)
	h("GET /admin/webhooks/{id}", p.adminWebhook)
	h("POST /admin/webhooks/{id}/active", p.adminAction(webhookPerm, "webhook", p.setWebhookActive))
	h("POST /admin/webhooks/{id}/delete", p.adminAction(webhookPerm, "webhook-deleted", p.deleteWebhook))
	h("POST /admin/webhooks/{id}/deliveries/{did}/retry", p.adminAction(webhookPerm, "retried", p.retryDelivery))
	h("GET /admin/audit/chain", p.adminAuditChain)
}

type webhooksPage struct {
	Webhooks []gatehouse.Webhook
}

func (p *Pages) adminWebhooks(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, webhookPerm)
	if !ok {
		return
	}
	var d webhooksPage
	if p.d.Admin.Webhooks != nil {
		hooks, err := p.d.Admin.Webhooks.List(r.Context(), si.user.ID, "", 200)
		if err != nil {
			p.fail(w, r, "admin", p.adminView(r, si, "Webhooks", nil), err)
			return
		}
		d.Webhooks = hooks
	}
	v := p.adminView(r, si, "Webhooks", d)
	v.Notice = notices[r.URL.Query().Get("notice")]
	p.render(w, r, http.StatusOK, "admin-webhooks", v)
}

type webhookPage struct {
	Webhook    gatehouse.Webhook
	Deliveries []gatehouse.WebhookDelivery
}

func (p *Pages) adminWebhook(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, webhookPerm)
	if !ok {
		return
	}
	fail := func(err error) { p.fail(w, r, "admin", p.adminView(r, si, "Webhook", nil), err) }
	if p.d.Admin.Webhooks == nil {
		fail(gatehouse.Errorf(gatehouse.CodeNotFound, "no such webhook"))
		return
	}
	hook, err := p.d.Admin.Webhooks.Get(r.Context(), si.user.ID, r.PathValue("id"))
	if err != nil {
		fail(err)
		return
	}
	ds, err := p.d.Admin.Webhooks.Deliveries(r.Context(), si.user.ID, hook.ID, "", 50)
	if err != nil {
		fail(err)
		return
	}
	v := p.adminView(r, si, "Webhook "+hook.URL, webhookPage{Webhook: hook, Deliveries: ds})
	v.Notice = notices[r.URL.Query().Get("notice")]
	p.render(w, r, http.StatusOK, "admin-webhook", v)
}

func (p *Pages) setWebhookActive(r *http.Request, si signedIn) (string, error) {
	id := r.PathValue("id")
	_, err := p.d.Admin.Webhooks.SetActive(r.Context(), si.user.ID, id, r.PostFormValue("active") == "true")
	return "/admin/webhooks/" + id, err
}

func (p *Pages) deleteWebhook(r *http.Request, si signedIn) (string, error) {
	return "/admin/webhooks", p.d.Admin.Webhooks.Delete(r.Context(), si.user.ID, r.PathValue("id"))
}

func (p *Pages) retryDelivery(r *http.Request, si signedIn) (string, error) {
	id := r.PathValue("id")
	_, err := p.d.Admin.Webhooks.Retry(r.Context(), si.user.ID, id, r.PathValue("did"))
	return "/admin/webhooks/" + id, err
}

// adminAuditChain walks the audit log's hash chain (the whole table, a
// page at a time) and says whether it holds, and where it breaks.
func (p *Pages) adminAuditChain(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, "audit:read")
	if !ok {
		return
	}
	if p.d.Admin.AuditChain == nil {
		p.fail(w, r, "admin", p.adminView(r, si, "Audit chain", nil), gatehouse.Errorf(gatehouse.CodeNotFound, "the chain check is not available here"))
		return
	}
	st, err := p.d.Admin.AuditChain(r.Context())
	if err != nil {
		p.fail(w, r, "admin", p.adminView(r, si, "Audit chain", nil), gatehouse.WrapError(gatehouse.CodeUnavailable, err, "the audit log could not be read; try again"))
		return
	}
	p.render(w, r, http.StatusOK, "admin-audit-chain", p.adminView(r, si, "Audit chain", st))
}
