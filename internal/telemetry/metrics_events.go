package telemetry

// reasonTooManyFailures is the user.locked reason of a lock by failed
// sign-ins (an admin's lock is not a lockout).
const reasonTooManyFailures = "too_many_failed_logins"

// The domain events CountEvent counts (gatehouse.EventUserRegistered,
// ...). telemetry sits below the root package in the import graph, so it
// names them; TestCountEvent drives it with the root's constants.
const (
	eventUserRegistered = "user.registered"
	eventUserLocked     = "user.locked"
	eventSessionRevoked = "session.revoked"
	eventSecurityAlert  = "security.alert"
)

// CountEvent counts what a committed domain event (its type and data)
// says happened:
// user.registered (gatehouse_registrations_total), user.locked by failed
// sign-ins (gatehouse_lockouts_total), session.revoked by reason
// (gatehouse_sessions_revoked_total) and security.alert by factor
// (gatehouse_security_alerts_total). Call it only after the event's
// transaction commits (store.Tx.AfterCommit), so a rolled-back change
// counts nothing. Other events count nothing here.
func (m *Metrics) CountEvent(eventType string, data map[string]any) {
	if m == nil {
		return
	}
	switch eventType {
	case eventUserRegistered:
		m.Registration()
	case eventUserLocked:
		if s, _ := data["reason"].(string); s == reasonTooManyFailures {
			m.Lockout()
		}
	case eventSessionRevoked:
		s, _ := data["reason"].(string)
		m.SessionRevoked(s)
	case eventSecurityAlert:
		m.SecurityAlert(alertFactors(data)...)
	}
}

// alertFactors names the factors of a security.alert: the risk factors of
// a risky sign-in or refresh, else the alert's reason (a suspected passkey
// clone). The data holds them as built in memory or as decoded JSON.
func alertFactors(data map[string]any) []string {
	var out []string
	switch fs := data["risk_factors"].(type) {
	case []map[string]any:
		for _, f := range fs {
			if n, ok := f["name"].(string); ok {
				out = append(out, n)
			}
		}
	case []any:
		for _, f := range fs {
			if m, ok := f.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					out = append(out, n)
				}
			}
		}
	}
	if len(out) == 0 {
		if r, _ := data["reason"].(string); r != "" && !isRiskyReason(r) {
			out = append(out, r)
		}
	}
	return out
}

// isRiskyReason tells the reasons of risk alerts ("risky_sign_in",
// "risky_refresh"), which name no factor of their own.
func isRiskyReason(r string) bool { return len(r) > 6 && r[:6] == "risky_" }
