package password

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestStrengthRequiredExamples(t *testing.T) {
	require.Less(t, Strength("Password1234!"), 3)
	require.Less(t, Strength("qwertyuiop12"), 3)
	require.GreaterOrEqual(t, Strength("correct horse battery staple"), 3)
}

func TestStrengthExamples(t *testing.T) {
	weak := []string{
		"", "a", "password", "P@ssw0rd", "drowssap", "PASSWORD", "123456789", "aaaaaaaaaaaa",
		"abcabcabcabc", "abcdefghijkl", "zyxwvutsrqpo", "9876543210", "qwertyuiop", "asdfghjkl;",
		"!@#$%^&*()", "25/12/1985", "19851225", "1985-12-25", "monkeydragon", "iloveyou2024",
	}
	for _, pw := range weak {
		require.Less(t, Strength(pw), 3, "%q (log10 %.2f)", pw, guessesLog10(pw))
	}
	strong := []string{
		"correct horse battery staple", "glacier tumble orchid velvet", "kX9#mQ2$vL7!pR4&wZ",
		"Tr0ub4dor&3-zebra", "пароль-для-почты-левый", "梅雨明けの空は青い",
	}
	for _, pw := range strong {
		require.GreaterOrEqual(t, Strength(pw), 3, "%q (log10 %.2f)", pw, guessesLog10(pw))
	}
}

func TestStrengthPersonal(t *testing.T) {
	pw := "Liddell-Wonderland"
	require.Less(t, guessesLog10(pw, "Alice Liddell"), guessesLog10(pw),
		"knowing the name makes the password cheaper to guess")
	require.Less(t, Strength("alice.liddell@example.com", "alice.liddell@example.com"), 3)
}

// Each pattern must price its token far below brute force.
func TestStrengthPatternsBeatBruteForce(t *testing.T) {
	cases := map[string]float64{ // password -> upper bound on log10 guesses
		"password":     1,
		"Password":     1,
		"PaSsWoRd":     3,
		"p455w0rd":     2,
		"drowssap":     1,
		"zzzzzzzzzzzz": 2.5,
		"xyzxyzxyz":    2.5,
		"dragondragon": 1.5,
		"Xq7!Xq7!Xq7!": 8.5,
		"lmnopqrs":     2.5,
		"87654321":     2,
		"poiuytre":     3,
		"1987":         2.1,
		"12.03.1987":   5.5,
		"031287":       4.7,
		"19870312":     4.7,
	}
	for pw, bound := range cases {
		got := guessesLog10(pw)
		require.Less(t, got, bound, "%q", pw)
		require.Less(t, got, float64(len([]rune(pw)))*math.Log10(poolSize([]rune(pw))), "%q", pw)
	}
}

func TestRepeatsUsePrimitiveUnits(t *testing.T) {
	// "a" × 12 is priced as one brute-forced "a" times 12 repeats, not as
	// "aa" × 6 or "aaa" × 4.
	want := math.Log10(26) + math.Log10(12)
	require.InDelta(t, want, guessesLog10("aaaaaaaaaaaa"), 1e-9)
	// A repeat followed by other text still counts.
	require.Less(t, guessesLog10("zzzzzzzzQm4#"), guessesLog10("zQzmz4z#zzzz"))
}

func TestScore(t *testing.T) {
	for log, want := range map[float64]int{0: 0, 2.99: 0, 3: 1, 5.99: 1, 6: 2, 7.99: 2, 8: 3, 9.99: 3, 10: 4, 50: 4} {
		require.Equal(t, want, score(log), "%v", log)
	}
}

func TestStrengthLongInputIsBounded(t *testing.T) {
	for _, pw := range []string{strings.Repeat("a", 10000), strings.Repeat("x7$Q", 2500), strings.Repeat("🔐", 5000)} {
		start := time.Now()
		_ = Strength(pw, strings.Repeat("n", 300)+"@example.com", strings.Repeat("word ", 100))
		require.Less(t, time.Since(start), 2*time.Second)
	}
}

func TestIsDate(t *testing.T) {
	yes := []string{"251285", "122585", "25121985", "12251985", "19851225", "1/2/85", "01-02-1985", "1985.12.25", "25 12 85", `1\2\99`}
	no := []string{"999999", "32121985", "25131985", "1/2/3", "1985/13/01", "1/2-85", "1:2:85", "123456789", "ab/cd/ef", "/1/2/85", "0/0/00"}
	for _, s := range yes {
		ok, _ := isDate([]rune(s))
		require.True(t, ok, s)
	}
	for _, s := range no {
		ok, _ := isDate([]rune(s))
		require.False(t, ok, s)
	}
}

func TestVariations(t *testing.T) {
	require.Zero(t, upperVariations([]rune("word")))
	require.Zero(t, upperVariations([]rune("1234")))
	for _, w := range []string{"Word", "worD", "WORD"} {
		require.InDelta(t, math.Log10(2), upperVariations([]rune(w)), 1e-9, w)
	}
	require.InDelta(t, math.Log10(4+6), upperVariations([]rune("wOrD")), 1e-9) // C(4,1)+C(4,2)

	require.InDelta(t, math.Log10(2), leetVariations([]rune("p@ss"), []rune("pass")), 1e-9)
	require.InDelta(t, 2*math.Log10(2), leetVariations([]rune("p@55"), []rune("pass")), 1e-9)
	require.InDelta(t, math.Log10(2), leetVariations([]rune("pa5s"), []rune("pass")), 1e-9) // C(2,1)
}

// A passphrase of four different ordinary words (not top passwords) is acceptable
// whatever the separator.
func TestStrengthPassphrases(t *testing.T) {
	words := []string{
		"glacier", "tumble", "orchid", "velvet", "quantum", "harbor", "lantern", "pepper",
		"meadow", "copper", "falcon", "riddle", "saddle", "thunder", "willow", "canyon",
		"biscuit", "marble", "nectar", "pebble", "quiver", "rustic", "timber", "walnut",
	}
	rapid.Check(t, func(t *rapid.T) {
		picked := rapid.SliceOfNDistinct(rapid.SampledFrom(words), 4, 4, rapid.ID[string]).Draw(t, "words")
		sep := rapid.SampledFrom([]string{" ", "-", ".", "_", ""}).Draw(t, "sep")
		pw := strings.Join(picked, sep)
		// Every word has at least six letters, so four make 24 or more.
		if len(pw) < 20 {
			t.Fatalf("%q is shorter than 20 characters", pw)
		}
		if got := Strength(pw); got < 3 {
			t.Fatalf("Strength(%q) = %d (log10 %.2f), want >= 3", pw, got, guessesLog10(pw))
		}
	})
}
