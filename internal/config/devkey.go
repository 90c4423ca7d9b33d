package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DevKeyFile is the name, inside the data dir, of the generated master key.
const DevKeyFile = "secret.key"

// EnsureMasterKey makes sure MasterKey is set. Without GATEHOUSE_SECRET_KEY
// it reads DataDir/secret.key, creating it (mode 0600) on first start. It
// reports whether the dev key is in use so the caller can warn loudly:
// anyone with the data dir can then decrypt the secrets in the database.
func (c *Config) EnsureMasterKey() (devKey bool, err error) {
	if c.MasterKey != nil {
		return false, nil
	}
	path := filepath.Join(c.DataDir, DevKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		c.MasterKey = DeriveMasterKey(strings.TrimSpace(string(b)))
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return true, fmt.Errorf("config: create data dir %s: %w", c.DataDir, err)
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return true, err
		}
		secret := base64.StdEncoding.EncodeToString(raw)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return true, fmt.Errorf("config: write dev key %s: %w", path, err)
		}
		_, werr := f.WriteString(secret + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return true, fmt.Errorf("config: write dev key %s: %w", path, werr)
		}
		c.MasterKey = DeriveMasterKey(secret)
	default:
		return true, fmt.Errorf("config: read dev key %s: %w", path, err)
	}
	c.GeneratedKey = true
	return true, nil
}
