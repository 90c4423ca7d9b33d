package gatehouse

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// lastStamp is the 60-bit time stamp (milliseconds, then 12 bits of
// sub-millisecond fraction) of the newest id this process made.
var lastStamp atomic.Uint64

// NewID returns a new UUIDv7 string, time-ordered so ids sort by creation
// and index well. Its rand_a field holds the sub-millisecond fraction
// (RFC 9562, method 3), and within this process each id sorts strictly
// after the one before, even within one clock tick: rows ordered by id
// (the audit trail, lists) keep the order in which they were made. The
// last 62 bits come from crypto/rand. Ids are identifiers, not secrets.
func NewID() string { return newIDAt(time.Now()) }

func newIDAt(t time.Time) string {
	stamp := uint64(t.UnixMilli())<<12 | uint64(t.Nanosecond()%1_000_000)*4096/1_000_000
	for {
		prev := lastStamp.Load()
		next := max(stamp, prev+1)
		if lastStamp.CompareAndSwap(prev, next) {
			stamp = next
			break
		}
	}
	var b [16]byte
	if _, err := rand.Read(b[8:]); err != nil {
		panic("gatehouse: crypto/rand failed: " + err.Error())
	}
	// 48 bits of milliseconds, version 7, 12 bits of fraction.
	binary.BigEndian.PutUint64(b[0:8], stamp>>12<<16|0x7000|stamp&0xfff)
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
