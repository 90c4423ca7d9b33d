package gatehouse

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// AuditLog is one row of the audit trail: who (ActorID) did what (Action)
// to which account (UserID) and resource, from where, how risky it looked,
// and when. Rows are written in the transaction of the change they record
// and never updated or deleted.
//
// Seq, PrevHash and Hash chain the rows: Seq numbers them from 1 in the
// order they were appended, PrevHash is the Hash of the row before (""
// for the first row), and Hash is ChainHash of the row. The store assigns
// all three when it appends a row; whatever the caller puts there is
// ignored.
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

	Seq      int64
	PrevHash string // hex SHA-256
	Hash     string // hex SHA-256
}

// auditHashDomain separates this hash from any other SHA-256 use and
// versions the encoding: a change to ChainHash's input needs a new one.
const auditHashDomain = "gatehouse.audit_log.v1"

// ChainHash is the row's hash in the audit chain: hex SHA-256 over a
// length-prefixed encoding of PrevHash, Seq, ID, ActorID, UserID, Action,
// Resource, IPAddress, UserAgent, CanonicalAuditMetadata(Metadata),
// RiskScore and CreatedAt in UTC microseconds (the stored precision).
// Every field is prefixed by its length, so no two different rows encode
// alike. It fails only when Metadata cannot be encoded as JSON.
func (l AuditLog) ChainHash() (string, error) {
	meta, err := CanonicalAuditMetadata(l.Metadata)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var n [8]byte
	putInt := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	put := func(b []byte) {
		putInt(uint64(len(b)))
		h.Write(b)
	}
	put([]byte(auditHashDomain))
	put([]byte(l.PrevHash))
	putInt(uint64(l.Seq))
	for _, s := range []string{l.ID, l.ActorID, l.UserID, l.Action, l.Resource, l.IPAddress, l.UserAgent} {
		put([]byte(s))
	}
	put(meta)
	putInt(uint64(int64(l.RiskScore)))
	putInt(uint64(l.CreatedAt.UTC().Truncate(time.Microsecond).UnixMicro()))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CanonicalAuditMetadata is the one JSON text of m that the hash covers
// and the store writes: m decoded as encoding/json decodes any JSON (numbers
// become float64, -0 becomes 0) and encoded again, which sorts keys. It is
// a fixed point, so the metadata read back from either engine (PostgreSQL's
// JSONB rewrites numbers and key order, but keeps their values) encodes to
// the same text. Nil or empty m is "{}".
func CanonicalAuditMetadata(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("audit metadata: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("audit metadata: %w", err)
	}
	return json.Marshal(zeroNegZero(v))
}

// zeroNegZero replaces -0 by 0: JSON text may say -0, but PostgreSQL's
// numeric has no negative zero and hands back 0.
func zeroNegZero(v any) any {
	switch x := v.(type) {
	case float64:
		if x == 0 && math.Signbit(x) {
			return 0.0
		}
	case map[string]any:
		for k, e := range x {
			x[k] = zeroNegZero(e)
		}
	case []any:
		for i, e := range x {
			x[i] = zeroNegZero(e)
		}
	}
	return v
}
