// Package browsertest finds the headless Chromium the browser tests drive
// through chromedp.
package browsertest

import (
	"os/exec"
	"testing"
)

// ChromiumPath finds Debian's chromium. The test skips, saying why, only
// when there is none; .ci/run installs it, so CI always runs the browser
// tests.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: install it (apt-get install chromium) to run the browser tests; .ci/run does")
	return ""
}
