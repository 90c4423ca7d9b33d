package telemetry

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Other is the label value a value outside a label's known set is counted
// under, so no caller can grow a metric's cardinality by mistake (or an
// attacker by choosing input).
const Other = "other"

// The label values of the business metrics. Every combination is created
// at 0 when the registry is made, so a dashboard or alert sees each series
// from the first scrape, not only after the first event.
var (
	// LoginMethods label gatehouse_logins_total{method}.
	LoginMethods = []string{"password", "passkey", "magic_link", "oauth", "mfa"}
	// LoginResults label gatehouse_logins_total{result}: success (a
	// session started), failure (wrong credentials or a spent, unknown or
	// refused proof), locked (the account is locked), mfa_required (held
	// for the account's second factor), step_up (held because the sign-in
	// looked risky).
	LoginResults = []string{"success", "failure", "locked", "mfa_required", "step_up"}
	// MFAMethods label gatehouse_mfa_verifications_total{method}.
	MFAMethods = []string{"totp", "sms", "backup_code"}
	// Results is the success/failure pair of the verification, webhook,
	// email and SMS counters.
	Results = []string{"success", "failure"}
	// RefreshResults label gatehouse_refresh_total{result}: success,
	// invalid (unknown, expired or revoked), reused (a rotated token came
	// back; its session was ended).
	RefreshResults = []string{"success", "invalid", "reused"}
	// RevokeReasons label gatehouse_sessions_revoked_total{reason}.
	RevokeReasons = []string{
		"logout", "revoked_by_user", "refresh_token_reused", "password_changed", "password_reset",
		"account_locked", "account_deleted", "email_claimed", "device_removed", "device_expired",
	}
	// AlertFactors label gatehouse_security_alerts_total{factor}: the
	// risk factors that raise security.alert, and the passkey clone check.
	AlertFactors = []string{
		"new_device", "new_country", "new_city", "impossible_travel", "failed_logins_account",
		"failed_logins_ip", "ip_reputation", "unusual_hour", "high_score", "passkey_clone_suspected",
	}
	// WebhookResults label gatehouse_webhook_deliveries_total{result}: one
	// per attempt; gone is a 410 answer, which disables the webhook.
	WebhookResults = []string{"success", "failure", "gone"}
	// EmailTemplates label gatehouse_emails_sent_total{template} (the
	// gatehouse.MailTemplate* names).
	EmailTemplates = []string{
		"verify_email", "reset_password", "welcome", "security_alert", "magic_link", "webhook_disabled", "new_device", "change_email",
	}
	// RateLimits label gatehouse_rate_limited_total{limit}: the API's and
	// the pages' limits, and the OpenID Provider's (oauth).
	RateLimits = []string{"login", "register", "email", "mfa", "api", "oauth"}
)

// business holds the domain counters of API.md § Metrics.
type business struct {
	logins          *prometheus.CounterVec
	registrations   prometheus.Counter
	mfa             *prometheus.CounterVec
	lockouts        prometheus.Counter
	refresh         *prometheus.CounterVec
	sessionsRevoked *prometheus.CounterVec
	alerts          *prometheus.CounterVec
	webhooks        *prometheus.CounterVec
	emails          *prometheus.CounterVec
	sms             *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	passwordHash    prometheus.Histogram
	cache           *prometheus.CounterVec
}

func newBusiness() *business {
	b := &business{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_logins_total",
			Help: "Sign-in attempts by method (password, passkey, magic_link, oauth, mfa) and result (success, failure, locked, mfa_required, step_up).",
		}, []string{"method", "result"}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_registrations_total",
			Help: "Accounts created (committed).",
		}),
		mfa: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_mfa_verifications_total",
			Help: "Second-factor codes checked, by method (totp, sms, backup_code) and result (success, failure).",
		}, []string{"method", "result"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_lockouts_total",
			Help: "Accounts locked by too many failed sign-ins (committed).",
		}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_refresh_total",
			Help: "Refresh token exchanges by result: success, invalid (unknown, expired or revoked), reused (a rotated token came back).",
		}, []string{"result"}),
		sessionsRevoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sessions_revoked_total",
			Help: "Sessions ended before they expired, by reason (committed).",
		}, []string{"reason"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_security_alerts_total",
			Help: "security.alert events by the risk factor that raised them (one alert counts once per factor; high_score when only the score did).",
		}, []string{"factor"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: success (2xx), failure (to be retried or given up), gone (410, webhook disabled).",
		}, []string{"result"}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_emails_sent_total",
			Help: "Email send attempts by template and result (success, failure).",
		}, []string{"template", "result"}),
		sms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sms_sent_total",
			Help: "Text message send attempts by result (success, failure).",
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_rate_limited_total",
			Help: "Requests refused with 429 rate_limited, by limit.",
		}, []string{"limit"}),
		passwordHash: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_password_hash_seconds",
			Help: "Time to hash or verify a password with Argon2id.",
			// Argon2id is tuned to tens to hundreds of milliseconds.
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, 1, 2},
		}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_cache_requests_total",
			Help: "Lookups in the in-process caches, by cache and result (hit, miss).",
		}, []string{"cache", "result"}),
	}
	for _, m := range LoginMethods {
		for _, r := range LoginResults {
			b.logins.WithLabelValues(m, r)
		}
	}
	for _, m := range MFAMethods {
		for _, r := range Results {
			b.mfa.WithLabelValues(m, r)
		}
	}
	for _, r := range RefreshResults {
		b.refresh.WithLabelValues(r)
	}
	for _, r := range RevokeReasons {
		b.sessionsRevoked.WithLabelValues(r)
	}
	for _, f := range AlertFactors {
		b.alerts.WithLabelValues(f)
	}
	for _, r := range WebhookResults {
		b.webhooks.WithLabelValues(r)
	}
	for _, t := range EmailTemplates {
		for _, r := range Results {
			b.emails.WithLabelValues(t, r)
		}
	}
	for _, r := range Results {
		b.sms.WithLabelValues(r)
	}
	for _, l := range RateLimits {
		b.rateLimited.WithLabelValues(l)
	}
	return b
}

func (b *business) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		b.logins, b.registrations, b.mfa, b.lockouts, b.refresh, b.sessionsRevoked, b.alerts,
		b.webhooks, b.emails, b.sms, b.rateLimited, b.passwordHash, b.cache,
	}
}

// known answers v when it is in set, else Other.
func known(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return Other
}

// The recording methods below are safe on a nil *Metrics (they do
// nothing), so a service made without metrics (in a unit test) needs no
// stand-in. Call them once the change they count has committed.

// Login counts a sign-in attempt (LoginMethods, LoginResults).
func (m *Metrics) Login(method, result string) {
	if m == nil {
		return
	}
	m.biz.logins.WithLabelValues(known(method, LoginMethods), known(result, LoginResults)).Inc()
}

// Registration counts an account created.
func (m *Metrics) Registration() {
	if m == nil {
		return
	}
	m.biz.registrations.Inc()
}

// MFAVerification counts a second-factor code checked (MFAMethods,
// Results).
func (m *Metrics) MFAVerification(method, result string) {
	if m == nil {
		return
	}
	m.biz.mfa.WithLabelValues(known(method, MFAMethods), known(result, Results)).Inc()
}

// Lockout counts an account locked by failed sign-ins.
func (m *Metrics) Lockout() {
	if m == nil {
		return
	}
	m.biz.lockouts.Inc()
}

// Refresh counts a refresh token exchange (RefreshResults).
func (m *Metrics) Refresh(result string) {
	if m == nil {
		return
	}
	m.biz.refresh.WithLabelValues(known(result, RefreshResults)).Inc()
}

// SessionRevoked counts a session ended early (RevokeReasons).
func (m *Metrics) SessionRevoked(reason string) {
	if m == nil {
		return
	}
	m.biz.sessionsRevoked.WithLabelValues(known(reason, RevokeReasons)).Inc()
}

// SecurityAlert counts a security alert once per factor that raised it
// (AlertFactors); with none, it counts as high_score.
func (m *Metrics) SecurityAlert(factors ...string) {
	if m == nil {
		return
	}
	if len(factors) == 0 {
		factors = []string{"high_score"}
	}
	for _, f := range factors {
		m.biz.alerts.WithLabelValues(known(f, AlertFactors)).Inc()
	}
}

// WebhookDelivery counts a webhook delivery attempt (WebhookResults).
func (m *Metrics) WebhookDelivery(result string) {
	if m == nil {
		return
	}
	m.biz.webhooks.WithLabelValues(known(result, WebhookResults)).Inc()
}

// EmailSent counts an email send attempt (EmailTemplates, Results).
func (m *Metrics) EmailSent(template, result string) {
	if m == nil {
		return
	}
	m.biz.emails.WithLabelValues(known(template, EmailTemplates), known(result, Results)).Inc()
}

// SMSSent counts a text message send attempt (Results).
func (m *Metrics) SMSSent(result string) {
	if m == nil {
		return
	}
	m.biz.sms.WithLabelValues(known(result, Results)).Inc()
}

// RateLimited counts a request refused with 429 (RateLimits).
func (m *Metrics) RateLimited(limit string) {
	if m == nil {
		return
	}
	m.biz.rateLimited.WithLabelValues(known(limit, RateLimits)).Inc()
}

// PasswordHashed records how long one Argon2id hash or verification took.
func (m *Metrics) PasswordHashed(d time.Duration) {
	if m == nil {
		return
	}
	m.biz.passwordHash.Observe(d.Seconds())
}

// Result names a success or failure for the counters labelled by Results.
func Result(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// CacheStats counts the lookups of one named cache in
// gatehouse_cache_requests_total{cache,result}. The zero value (from a nil
// *Metrics) counts nothing.
type CacheStats struct{ hit, miss prometheus.Counter }

// Cache returns the counters of the cache called name, creating both its
// series at 0. name must be a fixed name of a cache ("permissions",
// "sessions" ...), never data.
func (m *Metrics) Cache(name string) CacheStats {
	if m == nil {
		return CacheStats{}
	}
	return CacheStats{hit: m.biz.cache.WithLabelValues(name, "hit"), miss: m.biz.cache.WithLabelValues(name, "miss")}
}

// Hit counts a lookup answered from the cache.
func (c CacheStats) Hit() {
	if c.hit != nil {
		c.hit.Inc()
	}
}

// Miss counts a lookup the cache could not answer.
func (c CacheStats) Miss() {
	if c.miss != nil {
		c.miss.Inc()
	}
}

// Record counts a lookup: a hit when hit is true, else a miss.
func (c CacheStats) Record(hit bool) {
	if hit {
		c.Hit()
	} else {
		c.Miss()
	}
}
