package password

import (
	"math"
	"slices"
	"unicode"
)

// Strength estimates how hard password is to guess, as a score from 0 to
// 4 in the manner of zxcvbn: 0 is guessed almost at once, 3 resists an
// online attack comfortably, 4 resists a good deal of offline cracking.
// personal lists the account's email and name, which an attacker targeting
// the account would try first.
//
// The estimate is log10 of the guesses an attacker needs. The password is
// split into pieces, each piece priced as the cheapest pattern it fits:
//
//   - a common password or personal piece (also reversed, capitalised or
//     in leet speak): its rank on the list, times the ways to vary it;
//   - a repeat ("aaaa", "abcabc"): the price of one unit times the count;
//   - a sequence ("abcd", "9876"): about 4 to 26 starting points times
//     the length;
//   - a straight run on a keyboard row ("qwerty", "asdf", "!@#$"):
//     about 50 starting keys times the length;
//   - a year (1900-2099): 100; a date (with or without separators):
//     31 × 12 × 100, times 4 with separators;
//   - anything else: one guess per character in the character pool the
//     whole password draws on (26 lower, 26 upper, 10 digits, 33 ASCII
//     symbols, 100 for any non-ASCII), per character.
//
// The cheapest split wins, found by dynamic programming, and the total is
// mapped to a score: below 10^3 guesses 0, 10^6 1, 10^8 2, 10^10 3, else 4.
func Strength(password string, personal ...string) int {
	return score(guessesLog10(password, personal...))
}

// maxAnalysed bounds the work per estimate. Longer inputs are judged by
// their first maxAnalysed runes, which can only underestimate them.
const maxAnalysed = 256

func score(log10Guesses float64) int {
	switch {
	case log10Guesses < 3:
		return 0
	case log10Guesses < 6:
		return 1
	case log10Guesses < 8:
		return 2
	case log10Guesses < 10:
		return 3
	default:
		return 4
	}
}

// guessesLog10 returns log10 of the estimated number of guesses.
func guessesLog10(password string, personal ...string) float64 {
	rs := []rune(password)
	if len(rs) > maxAnalysed {
		rs = rs[:maxAnalysed]
	}
	if len(rs) == 0 {
		return 0
	}
	rank, maxLen := common()
	e := &estimator{
		common:   rank,
		personal: map[string]int{},
		maxLen:   maxLen,
		charLog:  math.Log10(poolSize(rs)),
		memo:     map[string]float64{},
	}
	toks := personalTokens(personal)
	for _, tok := range toks {
		e.maxLen = max(e.maxLen, len([]rune(tok)))
	}
	e.lengths = make([]bool, e.maxLen+1)
	for l := 1; l <= maxLen; l++ {
		e.lengths[l] = true // the common list has entries of (nearly) every length up to maxLen
	}
	for i, tok := range toks {
		e.personal[tok] = i + 1
		e.lengths[len([]rune(tok))] = true
	}
	return e.minLog10(rs)
}

// poolSize is the brute-force alphabet implied by the character classes
// present in rs.
func poolSize(rs []rune) float64 {
	var lower, upper, digit, symbol, other bool
	for _, r := range rs {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case r < 0x80:
			symbol = true
		default:
			other = true
		}
	}
	pool := 0.0
	for _, c := range []struct {
		has  bool
		size float64
	}{{lower, 26}, {upper, 26}, {digit, 10}, {symbol, 33}, {other, 100}} {
		if c.has {
			pool += c.size
		}
	}
	return pool
}

type estimator struct {
	common   map[string]int
	personal map[string]int
	maxLen   int     // longest dictionary entry, in runes
	lengths  []bool  // lengths[l]: some entry has l runes (skips useless lookups)
	charLog  float64 // log10 of the brute-force pool
	memo     map[string]float64
}

// match is a pattern covering runes [i, j) at a cost of log guesses.
type match struct {
	i, j int
	log  float64
}

// minLog10 is the cheapest segmentation of rs into matches and
// brute-forced characters.
func (e *estimator) minLog10(rs []rune) float64 {
	n := len(rs)
	lower := lowerRunes(rs)
	byEnd := make([][]match, n+1)
	emit := func(i, j int, log float64) {
		byEnd[j] = append(byEnd[j], match{i, j, max(log, 0)})
	}
	e.dictionary(rs, lower, emit)
	e.repeats(rs, lower, emit)
	sequences(lower, emit)
	keyboard(lower, emit)
	dates(lower, emit)

	best := make([]float64, n+1)
	for j := 1; j <= n; j++ {
		best[j] = best[j-1] + e.charLog
		for _, m := range byEnd[j] {
			best[j] = min(best[j], best[m.i]+m.log)
		}
	}
	return best[n]
}

func (e *estimator) lookup(w string) (int, bool) {
	r, ok := e.common[w]
	if p, pok := e.personal[w]; pok && (!ok || p < r) {
		r, ok = p, true
	}
	return r, ok
}

// dictionary finds common-list and personal entries of at least 3 runes,
// forwards in every leet variant and reversed in the plain one.
func (e *estimator) dictionary(rs, lower []rune, emit func(int, int, float64)) {
	n := len(rs)
	buf := make([]byte, 0, 4*e.maxLen)
	for vi, v := range leetVariants(lower) {
		for i := 0; i < n; i++ {
			buf = buf[:0]
			for j := i + 1; j <= n && j-i <= e.maxLen; j++ {
				buf = appendRune(buf, v[j-1])
				if j-i < 3 || !e.lengths[j-i] {
					continue
				}
				rank, ok := e.lookup(string(buf))
				if !ok {
					continue
				}
				leet := 0.0
				if vi > 0 {
					if slices.Equal(v[i:j], lower[i:j]) {
						continue // found by the plain pass already
					}
					leet = leetVariations(lower[i:j], v[i:j])
				}
				emit(i, j, math.Log10(float64(rank))+upperVariations(rs[i:j])+leet)
			}
		}
	}
	// Reversed entries ("drowssap"): grow leftwards from each end.
	for j := n; j > 0; j-- {
		buf = buf[:0]
		for i := j - 1; i >= 0 && j-i <= e.maxLen; i-- {
			buf = appendRune(buf, lower[i])
			if j-i < 3 || !e.lengths[j-i] {
				continue
			}
			if rank, ok := e.lookup(string(buf)); ok {
				emit(i, j, math.Log10(float64(rank))+upperVariations(rs[i:j])+math.Log10(2))
			}
		}
	}
}

func appendRune(b []byte, r rune) []byte {
	return append(b, string(r)...)
}

// upperVariations is log10 of the capitalisations an attacker tries for a
// word of this shape: none for all lower case, 2 for the usual ones (first
// or last letter, or all), otherwise the number of ways to place that
// many capitals, as zxcvbn does.
func upperVariations(w []rune) float64 {
	var up, low int
	for _, r := range w {
		switch {
		case unicode.IsUpper(r):
			up++
		case unicode.IsLower(r):
			low++
		}
	}
	switch {
	case up == 0:
		return 0
	case low == 0,
		up == 1 && (unicode.IsUpper(w[0]) || unicode.IsUpper(w[len(w)-1])):
		return math.Log10(2)
	}
	return math.Log10(sumBinomials(up+low, min(up, low)))
}

// leetVariations is log10 of the leet spellings an attacker tries: per
// substituted letter, 2 if every instance was substituted, else the ways
// to choose which ones were.
func leetVariations(orig, plain []rune) float64 {
	subbed := map[rune]int{}   // plain letter -> substituted count
	unsubbed := map[rune]int{} // plain letter -> occurrences left as is
	for k := range orig {
		if orig[k] != plain[k] {
			subbed[plain[k]]++
		}
	}
	for k := range orig {
		if _, ok := subbed[orig[k]]; ok && orig[k] == plain[k] {
			unsubbed[orig[k]]++
		}
	}
	total := 0.0
	for letter, s := range subbed {
		u := unsubbed[letter]
		if u == 0 {
			total += math.Log10(2)
			continue
		}
		total += math.Log10(sumBinomials(s+u, min(s, u)))
	}
	return total
}

// sumBinomials returns C(n,1) + ... + C(n,k).
func sumBinomials(n, k int) float64 {
	sum, c := 0.0, 1.0
	for i := 1; i <= k; i++ {
		c = c * float64(n-i+1) / float64(i)
		sum += c
	}
	return sum
}

// repeats finds a unit repeated back to back ("aaa", "abab", "xyzxyz"),
// priced as the unit's own estimate times the repeat count.
//
// For each period l, run[x] counts how far lower[x+t] == lower[x+l+t]
// holds from x on, so lower[i:i+l+run[i]] repeats an l-long unit; this
// takes O(n²) in all instead of comparing units pairwise. A longer period
// at i is skipped unless it reaches further than a shorter one did
// ("aaaa" is four "a", not two "aa"), which keeps units primitive and the
// number of recursive unit estimates small.
func (e *estimator) repeats(rs, lower []rune, emit func(int, int, float64)) {
	n := len(lower)
	run := make([]int, n+1)
	reached := make([]int, n) // furthest end emitted from i so far
	for l := 1; 2*l <= n; l++ {
		run[n-l] = 0
		for x := n - l - 1; x >= 0; x-- {
			run[x] = 0
			if lower[x] == lower[x+l] {
				run[x] = run[x+1] + 1
			}
		}
		for i := 0; i+2*l <= n; i++ {
			k := (l + run[i]) / l
			end := i + k*l
			if k < 2 || k*l < 3 || end <= reached[i] {
				continue
			}
			reached[i] = end
			emit(i, end, e.unitLog10(rs[i:i+l])+math.Log10(float64(k)))
		}
	}
}

func (e *estimator) unitLog10(unit []rune) float64 {
	key := string(unit)
	if v, ok := e.memo[key]; ok {
		return v
	}
	v := e.minLog10(unit)
	e.memo[key] = v
	return v
}

// sequences finds runs of letters or digits whose code points step by +1
// or -1 ("abcd", "4321"), at least 3 long.
func sequences(lower []rune, emit func(int, int, float64)) {
	n := len(lower)
	alnum := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
	for i := 0; i+2 < n; i++ {
		d := lower[i+1] - lower[i]
		if (d != 1 && d != -1) || !alnum(lower[i]) {
			continue
		}
		j := i + 1
		for j < n && lower[j]-lower[j-1] == d && alnum(lower[j]) {
			j++
		}
		base := 26.0
		switch s := lower[i]; {
		case s == 'a' || s == 'z' || s == '0' || s == '1' || s == '9':
			base = 4 // the obvious starting points
		case unicode.IsDigit(s):
			base = 10
		}
		if d < 0 {
			base *= 2
		}
		for end := i + 3; end <= j; end++ {
			emit(i, end, math.Log10(base*float64(end-i)))
		}
	}
}

// keyboardRows are the rows of a US QWERTY keyboard, unshifted and
// shifted (letters appear once: the password is lower-cased first).
var keyboardRows = []string{
	"`1234567890-=", "~!@#$%^&*()_+",
	"qwertyuiop[]\\", "qwertyuiop{}|",
	"asdfghjkl;'", "asdfghjkl:\"",
	"zxcvbnm,./", "zxcvbnm<>?",
}

// keyboard finds straight runs along a keyboard row, either direction,
// at least 3 keys long.
func keyboard(lower []rune, emit func(int, int, float64)) {
	n := len(lower)
	for _, row := range keyboardRows {
		keys := []rune(row)
		for i := 0; i+2 < n; i++ {
			c := slices.Index(keys, lower[i])
			if c < 0 {
				continue
			}
			for _, dir := range []int{1, -1} {
				j := i + 1
				for j < n && c+(j-i)*dir >= 0 && c+(j-i)*dir < len(keys) && keys[c+(j-i)*dir] == lower[j] {
					j++
				}
				base := 50.0
				if dir < 0 {
					base *= 2
				}
				for end := i + 3; end <= j; end++ {
					emit(i, end, math.Log10(base*float64(end-i)))
				}
			}
		}
	}
}

// Date pricing: about a hundred plausible years, and day × month × year.
const (
	yearGuesses = 100.0
	dateGuesses = 31 * 12 * yearGuesses
)

// dates finds years (1900-2099) and dates: 6 or 8 digits as day, month
// and year in any usual order, or three numbers split by one separator.
func dates(lower []rune, emit func(int, int, float64)) {
	n := len(lower)
	for i := 0; i+4 <= n; i++ {
		if y, ok := number(lower[i : i+4]); ok && y >= 1900 && y <= 2099 {
			emit(i, i+4, math.Log10(yearGuesses))
		}
		for l := 6; l <= 10 && i+l <= n; l++ {
			if ok, sep := isDate(lower[i : i+l]); ok {
				g := dateGuesses
				if sep {
					g *= 4
				}
				emit(i, i+l, math.Log10(g))
			}
		}
	}
}

// number parses ASCII digits.
func number(rs []rune) (int, bool) {
	v := 0
	for _, r := range rs {
		if r < '0' || r > '9' {
			return 0, false
		}
		v = v*10 + int(r-'0')
	}
	return v, len(rs) > 0
}

// isDate reports whether s is a date, and whether it used separators.
func isDate(s []rune) (ok, sep bool) {
	if _, digits := number(s); digits {
		switch len(s) {
		case 6:
			return dateParts(s[:2], s[2:4], s[4:]), false
		case 8:
			return dateParts(s[:2], s[2:4], s[4:]) || dateParts(s[:4], s[4:6], s[6:]), false
		}
		return false, false
	}
	k := slices.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	sepRune := s[k]
	if !slices.Contains([]rune(" -/._\\"), sepRune) {
		return false, false
	}
	var parts [][]rune
	start := 0
	for idx, r := range s {
		if r == sepRune {
			parts = append(parts, s[start:idx])
			start = idx + 1
		}
	}
	parts = append(parts, s[start:])
	return len(parts) == 3 && dateParts(parts[0], parts[1], parts[2]), true
}

// dateParts accepts a, b, c as day-month-year or month-day-year (year of
// 2 or 4 digits), or year-month-day (4-digit year).
func dateParts(a, b, c []rune) bool {
	va, okA := number(a)
	vb, okB := number(b)
	vc, okC := number(c)
	if !okA || !okB || !okC {
		return false
	}
	year := func(rs []rune, v int) bool {
		return len(rs) == 2 || (len(rs) == 4 && v >= 1900 && v <= 2099)
	}
	dm := func(d, m int) bool { return d >= 1 && d <= 31 && m >= 1 && m <= 12 }
	if len(a) <= 2 && len(b) <= 2 && year(c, vc) && (dm(va, vb) || dm(vb, va)) {
		return true
	}
	return len(a) == 4 && len(b) <= 2 && len(c) <= 2 && year(a, va) && dm(vc, vb)
}
