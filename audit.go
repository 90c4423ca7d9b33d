package gatehouse

import "time"

// AuditLog is one row of the audit trail: who (ActorID) did what (Action)
// to which account (UserID) and resource, from where, how risky it looked,
// and when. Rows are written in the transaction of the change they record
// and never updated or deleted.
type AuditLog struct {
	ID        string
	ActorID   string
	UserID    string
	Action    string
	Resource  string
	IPAddress string
	UserAgent string
	Metadata  map[string]any
	RiskScore int // 0-100
	CreatedAt time.Time
}
