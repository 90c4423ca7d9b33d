package password

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// Runes of 1 to 4 UTF-8 bytes, so lengths are checked in code points.
var lengthRunes = []rune{'a', 'Z', '7', '#', ' ', 'é', 'ß', 'Ж', '密', 'ア', '🔐', '😀'}

func hasCode(vs []Violation, code string) bool {
	return slices.ContainsFunc(vs, func(v Violation) bool { return v.Code == code })
}

// Property 3: length is counted in code points; too short and too long are
// reported exactly when the count is outside [MinLength, MaxLength].
func TestProperty3_PasswordLength(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := DefaultPolicy()
		if rapid.Bool().Draw(t, "custom bounds") {
			p.MinLength = rapid.IntRange(1, 40).Draw(t, "min")
			p.MaxLength = rapid.IntRange(p.MinLength, 160).Draw(t, "max")
		}
		n := rapid.IntRange(0, p.MaxLength+40).Draw(t, "length")
		pw := string(rapid.SliceOfN(rapid.SampledFrom(lengthRunes), n, n).Draw(t, "runes"))
		if utf8.RuneCountInString(pw) != n {
			t.Fatalf("generator produced %d runes, want %d", utf8.RuneCountInString(pw), n)
		}
		vs := p.Check(pw)
		short, long := hasCode(vs, CodeTooShort), hasCode(vs, CodeTooLong)
		switch {
		case n < p.MinLength && (!short || long):
			t.Fatalf("%d runes (%d bytes), min %d: got %v", n, len(pw), p.MinLength, vs)
		case n > p.MaxLength && (!long || short):
			t.Fatalf("%d runes (%d bytes), max %d: got %v", n, len(pw), p.MaxLength, vs)
		case n >= p.MinLength && n <= p.MaxLength && (short || long):
			t.Fatalf("%d runes (%d bytes) within [%d,%d]: got %v", n, len(pw), p.MinLength, p.MaxLength, vs)
		}
	})
}

// randomCase upper-cases a random subset of w's letters.
func randomCase(t *rapid.T, w, label string) string {
	rs := []rune(w)
	flips := rapid.SliceOfN(rapid.Bool(), len(rs), len(rs)).Draw(t, label)
	for i, up := range flips {
		if up {
			rs[i] = []rune(strings.ToUpper(string(rs[i])))[0]
		}
	}
	return string(rs)
}

// strongRunes is a large alphabet: printable ASCII plus some non-ASCII
// letters, as a password manager might generate.
var strongRunes = func() []rune {
	var rs []rune
	for r := rune('!'); r <= '~'; r++ {
		rs = append(rs, r)
	}
	return append(rs, []rune("äöüßéèñçøåЖЯλΩ")...)
}()

func strongPassword(t *rapid.T, minLen, maxLen int, label string) string {
	return string(rapid.SliceOfN(rapid.SampledFrom(strongRunes), minLen, maxLen).Draw(t, label))
}

// Property 4: the policy rejects common and personal passwords, accepts
// random strong ones, and enforces composition rules only when enabled.
func TestProperty4_PasswordStrengthPolicy(t *testing.T) {
	rank, _ := common()
	list := make([]string, 0, len(rank))
	for w := range rank {
		list = append(list, w)
	}
	slices.Sort(list) // deterministic order for rapid's shrinking

	t.Run("common list entries are rejected in any case", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			w := rapid.SampledFrom(list).Draw(t, "entry")
			pw := randomCase(t, w, "upper")
			if vs := DefaultPolicy().Check(pw); !hasCode(vs, CodeCommon) {
				t.Fatalf("%q (from %q) not rejected as common: %v", pw, w, vs)
			}
		})
	})

	t.Run("random strong passwords pass the default policy", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			pw := strongPassword(t, 20, 64, "password")
			if vs := DefaultPolicy().Check(pw, "alice.liddell@example.com", "Alice Liddell"); len(vs) > 0 {
				t.Fatalf("%q rejected: %v (log10 guesses %.2f)", pw, vs, guessesLog10(pw))
			}
		})
	})

	t.Run("passwords containing the email local part or a name are rejected", func(t *testing.T) {
		letters := rapid.StringOfN(rapid.RuneFrom([]rune("abcdefghijklmnopqrstuvwxyz")), 3, 10, -1)
		rapid.Check(t, func(t *rapid.T) {
			first, last := letters.Draw(t, "first"), letters.Draw(t, "last")
			local := first + rapid.SampledFrom([]string{".", "_", "", "-"}).Draw(t, "sep") + last
			email := local + "@example.org"
			name := strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:]
			piece := rapid.SampledFrom([]string{local, first, last}).Draw(t, "piece")
			pw := strongPassword(t, 0, 12, "prefix") + randomCase(t, piece, "upper") + strongPassword(t, 0, 12, "suffix")
			if vs := DefaultPolicy().Check(pw, email, name); !hasCode(vs, CodeContainsPersonal) {
				t.Fatalf("%q contains %q from %q / %q, got %v", pw, piece, email, name, vs)
			}
		})
	})

	t.Run("composition rules reject exactly the missing classes", func(t *testing.T) {
		classes := []struct {
			code  string
			runes []rune
		}{
			{CodeMissingUpper, []rune("ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜÉЖΩ")},
			{CodeMissingLower, []rune("abcdefghijklmnopqrstuvwxyzäöüßéжω")},
			{CodeMissingDigit, []rune("0123456789")},
			{CodeMissingSymbol, []rune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €")},
		}
		rapid.Check(t, func(t *rapid.T) {
			p := Policy{RequireUpper: true, RequireLower: true, RequireDigit: true, RequireSymbol: true}
			if rapid.Bool().Draw(t, "with default checks") {
				p = DefaultPolicy()
				p.RequireUpper, p.RequireLower, p.RequireDigit, p.RequireSymbol = true, true, true, true
			}
			var pw []rune
			var missing []string
			for _, c := range classes {
				if rapid.Bool().Draw(t, "include "+c.code) {
					pw = append(pw, rapid.SliceOfN(rapid.SampledFrom(c.runes), 1, 8).Draw(t, c.code)...)
				} else {
					missing = append(missing, c.code)
				}
			}
			pw = rapid.Permutation(pw).Draw(t, "shuffled")
			vs := p.Check(string(pw))
			for _, c := range classes {
				want := slices.Contains(missing, c.code)
				if hasCode(vs, c.code) != want {
					t.Fatalf("%q: %s reported=%v, want %v (%v)", string(pw), c.code, !want, want, vs)
				}
			}
			// With composition rules off, none is ever reported.
			off := p
			off.RequireUpper, off.RequireLower, off.RequireDigit, off.RequireSymbol = false, false, false, false
			for _, c := range classes {
				if hasCode(off.Check(string(pw)), c.code) {
					t.Fatalf("%q: %s reported with composition rules off", string(pw), c.code)
				}
			}
		})
	})
}
