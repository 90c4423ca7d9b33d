package password

import (
	"errors"
	"fmt"
)

// Params are the Argon2id cost parameters. They are stored inside every
// hash, so changing them only affects new hashes and rehash-on-login.
type Params struct {
	// Memory is the memory cost in KiB; it is the main defence against
	// GPU and ASIC cracking, and what the concurrency limit protects.
	Memory uint32
	// Iterations is the number of passes over the memory (time cost).
	Iterations uint32
	// Parallelism is the number of lanes, and of goroutines argon2 uses
	// for one hash.
	Parallelism uint8
	// SaltLen is the length in bytes of the random salt made per hash.
	SaltLen uint32
	// KeyLen is the length in bytes of the derived hash.
	KeyLen uint32
}

// DefaultParams are OWASP's recommended Argon2id settings (19 MiB, two
// passes, one lane): strong enough for production while one hash stays in
// the tens of milliseconds.
var DefaultParams = Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// TestParams are deliberately weak so that tests which are not about
// hashing (API, end-to-end) can create and log in many users quickly.
// Never use them in production.
var TestParams = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Limits a Params value must respect. The upper bounds also apply to
// hashes read back from storage, so a corrupt or hostile row cannot make
// one verification allocate gigabytes or run for minutes.
const (
	// MinSaltLen is the RFC 9106 minimum salt length in bytes.
	MinSaltLen = 8
	// MaxSaltLen bounds salts read from storage; 16 is plenty.
	MaxSaltLen = 64
	// MinKeyLen keeps the tag long enough that a lucky match is
	// impossible in practice.
	MinKeyLen = 16
	// MaxKeyLen bounds derived hashes read from storage.
	MaxKeyLen = 128
	// MaxMemory is 1 GiB in KiB, far above any sensible setting.
	MaxMemory = 1 << 20
	// MaxIterations bounds the time one verification can take.
	MaxIterations = 100
)

// ErrInvalidParams is wrapped by Params.Validate errors.
var ErrInvalidParams = errors.New("password: invalid argon2id parameters")

// Validate reports parameters argon2 would reject or silently adjust, or
// that exceed the limits above, so that configuration mistakes surface at
// start-up instead of as weaker-than-intended hashes.
func (p Params) Validate() error {
	switch {
	case p.Parallelism < 1:
		return fmt.Errorf("%w: parallelism must be at least 1", ErrInvalidParams)
	case p.Iterations < 1 || p.Iterations > MaxIterations:
		return fmt.Errorf("%w: iterations must be 1..%d, got %d", ErrInvalidParams, MaxIterations, p.Iterations)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > MaxMemory:
		return fmt.Errorf("%w: memory must be %d..%d KiB (at least 8 KiB per lane), got %d",
			ErrInvalidParams, 8*uint32(p.Parallelism), MaxMemory, p.Memory)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("%w: salt length must be %d..%d bytes, got %d", ErrInvalidParams, MinSaltLen, MaxSaltLen, p.SaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("%w: key length must be %d..%d bytes, got %d", ErrInvalidParams, MinKeyLen, MaxKeyLen, p.KeyLen)
	}
	return nil
}
