package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// keys list tells which key signs: after a rotation the new key is
// published ("next", with the time it starts signing) while the old one
// still signs.
func TestKeysListAndRotate(t *testing.T) {
	env := map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error"}
	out, err := run(t, env, "keys", "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^KID\s+ALG\s+STATUS\s+CREATED\s+SIGNS FROM\s+SIGNS UNTIL\s+PUBLISHED UNTIL$`, lines[0])
	first := strings.Fields(lines[1])[0]
	require.Regexp(t, `^\S+\s+RS256\s+signing\s+\S+\s+-\s+-\s+-$`, lines[1])

	out, err = run(t, env, "keys", "rotate")
	require.NoError(t, err)
	m := regexp.MustCompile(`^new signing key: (\S+) \(published now, signs from (\S+)\)\n$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	second, from := m[1], m[2]

	out, err = run(t, env, "keys", "list")
	require.NoError(t, err)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^`+regexp.QuoteMeta(second)+`\s+RS256\s+next\s+\S+\s+`+regexp.QuoteMeta(from)+`\s+-\s+-$`, lines[1])
	require.Regexp(t, `^`+regexp.QuoteMeta(first)+`\s+RS256\s+signing\s+\S+\s+-\s+`+regexp.QuoteMeta(from)+`\s+\S+$`, lines[2])
}
