package risk

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Blocklist is a file of IP addresses and CIDR ranges with a bad
// reputation (GATEHOUSE_IP_BLOCKLIST): one per line, '#' starts a comment.
// It is re-read when the file's modification time or size changes,
// checked at most once per CheckEvery; a file that fails to parse keeps the
// previous list (and the error is reported by Err).
type Blocklist struct {
	path       string
	now        func() time.Time
	checkEvery time.Duration

	mu       sync.RWMutex
	prefixes []netip.Prefix
	modTime  time.Time
	size     int64
	checked  time.Time
	err      error
}

// DefaultCheckEvery is how often a Blocklist looks at its file.
const DefaultCheckEvery = 10 * time.Second

// OpenBlocklist reads the file; an unreadable or malformed file is an
// error at start-up. now may be nil (time.Now); checkEvery ≤ 0 means
// DefaultCheckEvery.
func OpenBlocklist(path string, now func() time.Time, checkEvery time.Duration) (*Blocklist, error) {
	if now == nil {
		now = time.Now
	}
	if checkEvery <= 0 {
		checkEvery = DefaultCheckEvery
	}
	b := &Blocklist{path: path, now: now, checkEvery: checkEvery}
	if err := b.reload(); err != nil {
		return nil, err
	}
	b.checked = now()
	return b, nil
}

// Contains reports whether ip is listed, first re-reading the file if it
// changed.
func (b *Blocklist) Contains(ip netip.Addr) bool {
	if b == nil || !ip.IsValid() {
		return false
	}
	b.maybeReload()
	ip = ip.Unmap()
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, p := range b.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Len is how many entries are loaded.
func (b *Blocklist) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.prefixes)
}

// Err is the last reload's error (nil when the list is current).
func (b *Blocklist) Err() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.err
}

func (b *Blocklist) maybeReload() {
	now := b.now()
	b.mu.RLock()
	due := now.Sub(b.checked) >= b.checkEvery || now.Before(b.checked)
	b.mu.RUnlock()
	if !due {
		return
	}
	b.mu.Lock()
	b.checked = now
	b.mu.Unlock()
	err := b.reload()
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

// reload re-reads the file when its modification time or size changed.
func (b *Blocklist) reload() error {
	fi, err := os.Stat(b.path)
	if err != nil {
		return fmt.Errorf("ip blocklist: %w", err)
	}
	b.mu.RLock()
	same := b.prefixes != nil && fi.ModTime().Equal(b.modTime) && fi.Size() == b.size
	b.mu.RUnlock()
	if same {
		return nil
	}
	raw, err := os.ReadFile(b.path)
	if err != nil {
		return fmt.Errorf("ip blocklist: %w", err)
	}
	prefixes, err := ParseBlocklist(raw)
	if err != nil {
		return fmt.Errorf("ip blocklist %s: %w", b.path, err)
	}
	b.mu.Lock()
	b.prefixes, b.modTime, b.size = prefixes, fi.ModTime(), fi.Size()
	b.mu.Unlock()
	return nil
}

// ParseBlocklist reads blocklist text: an IP or CIDR per line, blank lines
// and '#' comments ignored. IPv4-mapped IPv6 entries are stored as the
// IPv4 address or range they stand for (::ffff:203.0.113.0/120 is
// 203.0.113.0/24), since Contains looks addresses up unmapped; a mapped
// range shorter than /96, which would reach beyond ::ffff:0:0/96, is an
// error. The error names the first bad line.
func ParseBlocklist(raw []byte) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if p, err := netip.ParsePrefix(line); err == nil {
			if p.Addr().Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("line %d: %q is an IPv4-mapped range shorter than /96; write the IPv4 or IPv6 range it means", n, line)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q is not an IP address or CIDR", n, line)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, sc.Err()
}
