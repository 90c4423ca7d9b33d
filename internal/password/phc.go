package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformedHash means a stored hash is not a well-formed Argon2id PHC
// string. It points at corrupt data, never at a wrong password.
var ErrMalformedHash = errors.New("password: malformed hash")

// ErrUnsupportedHash means a stored hash is well formed but uses another
// algorithm, another Argon2 version, or parameters beyond the limits this
// package will compute, e.g. a bcrypt hash imported from another system.
var ErrUnsupportedHash = errors.New("password: unsupported hash")

const (
	phcAlgorithm = "argon2id"
	phcVersion   = 19 // argon2.Version (0x13)
)

// b64 is the PHC string alphabet: standard base64 without padding. Strict
// rejects non-canonical encodings so one hash has exactly one spelling.
var b64 = base64.RawStdEncoding.Strict()

// decoded is a parsed PHC string.
type decoded struct {
	params Params
	salt   []byte
	key    []byte
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		phcAlgorithm, phcVersion, p.Memory, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC reads "$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<hash>". It is
// strict on purpose (fixed field order, decimal numbers without signs):
// everything it accepts was written by encodePHC or an equivalent
// reference implementation, and anything else is better reported than
// guessed at.
func parsePHC(s string) (decoded, error) {
	var d decoded
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return d, fmt.Errorf("%w: want 5 '$'-separated fields", ErrMalformedHash)
	}
	if parts[1] != phcAlgorithm {
		return d, fmt.Errorf("%w: algorithm %q, want %s", ErrUnsupportedHash, truncate(parts[1]), phcAlgorithm)
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return d, fmt.Errorf("%w: missing version", ErrMalformedHash)
	}
	ver, err := parseUint(v, 32)
	if err != nil {
		return d, fmt.Errorf("%w: version: %v", ErrMalformedHash, err)
	}
	if ver != phcVersion {
		return d, fmt.Errorf("%w: argon2 version %d, want %d", ErrUnsupportedHash, ver, phcVersion)
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return d, fmt.Errorf("%w: want parameters m,t,p", ErrMalformedHash)
	}
	var vals [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return d, fmt.Errorf("%w: parameter %d must be %s", ErrMalformedHash, i+1, name)
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		if vals[i], err = parseUint(val, bits); err != nil {
			return d, fmt.Errorf("%w: parameter %s: %v", ErrMalformedHash, name, err)
		}
	}
	if d.salt, err = b64.DecodeString(parts[4]); err != nil {
		return d, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	if d.key, err = b64.DecodeString(parts[5]); err != nil {
		return d, fmt.Errorf("%w: hash: %v", ErrMalformedHash, err)
	}
	d.params = Params{
		Memory:      uint32(vals[0]),
		Iterations:  uint32(vals[1]),
		Parallelism: uint8(vals[2]),
		SaltLen:     uint32(len(d.salt)),
		KeyLen:      uint32(len(d.key)),
	}
	if err := d.params.Validate(); err != nil {
		return d, fmt.Errorf("%w: %v", ErrUnsupportedHash, err)
	}
	return d, nil
}

// parseUint reads a decimal parameter, with a short error that does not
// echo an arbitrarily long stored value into logs.
func parseUint(s string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", truncate(s))
	}
	return n, nil
}

// truncate keeps error messages short when a stored value is garbage.
func truncate(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}
