package password

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func codes(vs []Violation) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		require.NotEmpty(nil, v.Message)
		out = append(out, v.Code)
	}
	return out
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	require.Equal(t, Policy{MinLength: 12, MaxLength: 128, CheckCommon: true, CheckPersonal: true, MinStrength: 3}, p)
	require.False(t, p.RequireUpper || p.RequireLower || p.RequireDigit || p.RequireSymbol,
		"composition rules are off by default (NIST SP 800-63B)")
}

func TestCheckExamples(t *testing.T) {
	personal := []string{"john.smith@example.com", "John Smith"}
	cases := []struct {
		pw   string
		want []string
	}{
		{"correct horse battery staple", nil},
		{"glacier-tumble-orchid-velvet", nil},
		{"kX9#mQ2$vL7!pR4&wZ", nil},
		{"", []string{CodeTooShort, CodeTooGuessable}},
		{"short", []string{CodeTooShort, CodeTooGuessable}},
		{"password", []string{CodeTooShort, CodeCommon, CodeTooGuessable}},
		{"Password1234!", []string{CodeCommon, CodeTooGuessable}},
		{"qwertyuiop12", []string{CodeCommon, CodeTooGuessable}},
		{"P@ssw0rd2024", []string{CodeCommon, CodeTooGuessable}},
		{"Summer2024!!", []string{CodeCommon}},
		{"abcdefghijklmnop", []string{CodeTooGuessable}},
		{"aaaaaaaaaaaaaaaa", []string{CodeTooGuessable}},
		{"JohnSmith-orchid-tumble", []string{CodeContainsPersonal}},
		{"my j0hn.sm1th zebra quartz", []string{CodeContainsPersonal}},
		{strings.Repeat("x7$Q", 33), []string{CodeTooLong}},
		{strings.Repeat("ab", 65), []string{CodeTooLong, CodeTooGuessable}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, nilIfEmpty(codes(DefaultPolicy().Check(c.pw, personal...))), "%q", c.pw)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestZeroPolicyAcceptsEverything(t *testing.T) {
	for _, pw := range []string{"", "a", "password", strings.Repeat("a", 1000)} {
		require.Nil(t, Policy{}.Check(pw, "a@b.c", "Aaron"), "%q", pw)
	}
}

func TestCheckPersonalOff(t *testing.T) {
	p := DefaultPolicy()
	p.CheckPersonal = false
	require.Nil(t, p.Check("JohnSmith-orchid-tumble", "john.smith@example.com", "John Smith"))
}

func TestCheckCommonOff(t *testing.T) {
	p := DefaultPolicy()
	p.CheckCommon = false
	require.NotContains(t, codes(p.Check("Password1234!")), CodeCommon)
}

func TestComposition(t *testing.T) {
	p := Policy{RequireUpper: true, RequireLower: true, RequireDigit: true, RequireSymbol: true}
	cases := map[string][]string{
		"":          {CodeMissingUpper, CodeMissingLower, CodeMissingDigit, CodeMissingSymbol},
		"aB3!":      nil,
		"ÄÖß٣ ":     nil, // non-ASCII letters and digits count; space is a symbol
		"abc":       {CodeMissingUpper, CodeMissingDigit, CodeMissingSymbol},
		"ABC":       {CodeMissingLower, CodeMissingDigit, CodeMissingSymbol},
		"123":       {CodeMissingUpper, CodeMissingLower, CodeMissingSymbol},
		"#$%":       {CodeMissingUpper, CodeMissingLower, CodeMissingDigit},
		"密码密码":      {CodeMissingUpper, CodeMissingLower, CodeMissingDigit, CodeMissingSymbol},
		"Abc def 1": nil,
	}
	for pw, want := range cases {
		require.Equal(t, want, nilIfEmpty(codes(p.Check(pw))), "%q", pw)
	}
}

func TestPersonalTokens(t *testing.T) {
	got := personalTokens([]string{"  J.Doe+News@Example.COM ", "Al Bo Catherine Zeta-Jones", "", "x@y"})
	want := []string{
		"j.doe+news@example.com", "j.doe+news", "doe", "news",
		"al bo catherine zeta-jones", "catherine", "zeta", "jones",
		"x@y", // the whole address is kept; its 1-rune local part is not
	}
	require.Equal(t, want, got)
	require.Empty(t, personalTokens(nil))
}

func TestContainsPersonal(t *testing.T) {
	personal := []string{"alice.liddell@example.com", "Alice Liddell"}
	for _, pw := range []string{"ALICE in chains", "xx-l1dd3ll-xx", "@l1ce-the-best", "alice.liddell@example.com!"} {
		require.True(t, containsPersonal(pw, personal), pw)
	}
	for _, pw := range []string{"malic", "example-domain-only", "liddel"} {
		require.False(t, containsPersonal(pw, personal), pw)
	}
	require.False(t, containsPersonal("anything", nil))
}

func TestIsCommon(t *testing.T) {
	for _, pw := range []string{"password", "PASSWORD", "PassWord", "P@ssw0rd", "passw0rd", "Password123!", "!!password", "2024dragon2024", "qwertyuiop", "123456"} {
		require.True(t, isCommon(pw), pw)
	}
	for _, pw := range []string{"", "!!!", "correct horse battery staple", "pass word", "passwordx"} {
		require.False(t, isCommon(pw), pw)
	}
}

func TestCommonList(t *testing.T) {
	rank, maxLen := common()
	require.GreaterOrEqual(t, len(rank), 10000)
	require.Equal(t, 1, rank["123456"])
	require.Equal(t, 2, rank["password"])
	require.Equal(t, 20, maxLen)
	for w := range rank {
		require.Equal(t, strings.ToLower(w), w)
		require.NotContains(t, w, "\n")
		require.NotEmpty(t, w)
	}
	lines := strings.Split(strings.TrimSuffix(commonRaw, "\n"), "\n")
	require.Len(t, lines, len(rank), "the file has no duplicates or blank lines")
	require.True(t, slices.IsSorted([]int{rank[lines[0]], rank[lines[1]], rank[lines[len(lines)-1]]}))
}
