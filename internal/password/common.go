package password

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// commonRaw is the zxcvbn 4.4.2 password frequency list (30,000 entries,
// most common first, lower-cased), Copyright (c) 2012-2016 Dan Wheeler and
// Dropbox, Inc., MIT license; the full notice is in LICENSE-zxcvbn.txt,
// which must travel with the list.
//
//go:embed common-passwords.txt
var commonRaw string

var (
	commonOnce   sync.Once
	commonRank   map[string]int // entry -> 1-based rank (1 = most common)
	commonMaxLen int            // longest entry, in runes
)

// common returns the rank table, building it on first use so that
// processes that never check a password do not pay for it.
func common() (map[string]int, int) {
	commonOnce.Do(func() {
		commonRank = make(map[string]int, 30000)
		rank := 0
		for line := range strings.Lines(commonRaw) {
			w := strings.TrimRight(line, "\r\n")
			if w == "" {
				continue
			}
			rank++
			if _, dup := commonRank[w]; !dup {
				commonRank[w] = rank
			}
			commonMaxLen = max(commonMaxLen, utf8.RuneCountInString(w))
		}
	})
	return commonRank, commonMaxLen
}

// isCommon reports whether password is on the common list, ignoring case
// and leet substitutions, also after dropping digits and symbols from its
// ends: "Password123!" and "!P@ssw0rd" are the first things cracking
// rules try, so they count as the listed password itself.
func isCommon(password string) bool {
	rank, _ := common()
	lower := lowerRunes([]rune(password))
	core := trimNonLetters(lower)
	for _, cand := range [][]rune{lower, core} {
		if len(cand) == 0 {
			continue
		}
		for _, v := range leetVariants(cand) {
			if _, ok := rank[string(v)]; ok {
				return true
			}
		}
	}
	return false
}

// leetA and leetB undo common "leet speak" substitutions; they differ only
// in whether 1 stands for i or for l.
var (
	leetA = map[rune]rune{'@': 'a', '4': 'a', '0': 'o', '1': 'i', '3': 'e', '5': 's', '$': 's', '7': 't'}
	leetB = map[rune]rune{'@': 'a', '4': 'a', '0': 'o', '1': 'l', '3': 'e', '5': 's', '$': 's', '7': 't'}
)

// leetVariants returns rs itself followed by each de-leeted form that
// differs from it. Every variant has the same length as rs, so positions
// line up with the original.
func leetVariants(rs []rune) [][]rune {
	out := [][]rune{rs}
	for _, table := range []map[rune]rune{leetA, leetB} {
		v := make([]rune, len(rs))
		changed := false
		for i, r := range rs {
			if to, ok := table[r]; ok {
				v[i], changed = to, true
			} else {
				v[i] = r
			}
		}
		if changed && !slices.Equal(v, out[len(out)-1]) {
			out = append(out, v)
		}
	}
	return out
}

// lowerRunes lower-cases rune by rune, keeping one rune per input rune so
// that match positions stay aligned with the original password.
func lowerRunes(rs []rune) []rune {
	out := make([]rune, len(rs))
	for i, r := range rs {
		out[i] = unicode.ToLower(r)
	}
	return out
}

func trimNonLetters(rs []rune) []rune {
	i, j := 0, len(rs)
	for i < j && !unicode.IsLetter(rs[i]) {
		i++
	}
	for j > i && !unicode.IsLetter(rs[j-1]) {
		j--
	}
	return rs[i:j]
}
