// Package deploy holds the checks of the deployment files; this file checks
// the operator documentation that goes with them.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// anchors returns the heading anchors GitHub makes for a Markdown file:
// lower case, punctuation dropped except - and _, spaces to hyphens, a
// numeric suffix for repeats. Headings inside fenced code are not headings.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for line := range strings.Lines(string(b)) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
		var slug strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				slug.WriteRune(r)
			case r == ' ':
				slug.WriteRune('-')
			}
		}
		a := slug.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a += "-" + string(rune('0'+n))
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

// The alert rules link to these sections of the runbook by anchor.
func TestRunbookAnchorsForAlerts(t *testing.T) {
	got := anchors(t, "../docs/runbook.md")
	for _, a := range []string{
		"high-error-rate", "latency", "instance-not-ready", "credential-stuffing", "refresh-token-reuse",
		"circuit-breaker-open", "job-backlog", "key-compromise", "master-key-compromise", "master-key-loss",
		"mass-session-revocation",
	} {
		require.True(t, got[a], "docs/runbook.md has no section #%s", a)
	}
}

var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link in the deployment docs reaches a file, and every
// #fragment a heading of its target.
func TestDocLinksResolve(t *testing.T) {
	for _, doc := range []string{
		"../README.md", "../docs/deployment.md", "../docs/troubleshooting.md", "../docs/runbook.md",
		"compose/README.md", "grafana/dashboards/README.md",
	} {
		b, err := os.ReadFile(doc)
		require.NoError(t, err)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), file)
			}
			_, err := os.Stat(path)
			require.NoError(t, err, "%s links to %s", doc, target)
			if frag != "" {
				require.True(t, anchors(t, path)[frag], "%s links to %s: no such heading", doc, target)
			}
		}
	}
}
