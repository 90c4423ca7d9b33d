package gatehouse_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
)

// The look-alikes of issue #16 and their kin: each would have been an
// account of its own, receiving mail, under an address that reads as
// another's. Each is refused with invalid_email naming body.email.
func TestParseEmailRefusesLookAlikes(t *testing.T) {
	for in, why := range map[string]string{
		"adm\u200bin@example.com":                    "zero-width space in the local part",
		"admin\u200d@example.com":                    "zero-width joiner",
		"admin@exa\u200bmple.com":                    "zero-width space in the domain (IDNA would silently drop it)",
		"ad\u00admin@example.com":                    "soft hyphen",
		"admin\u202e@example.com":                    "right-to-left override",
		"admin\ufe0f@example.com":                    "variation selector",
		"\ufeffadmin@example.com":                    "byte order mark",
		"admin@ex\u0430mple.com":                     "Cyrillic а in the domain",
		"\u0430dmin@example.com":                     "Cyrillic а in the local part",
		"admin@xn--80ak6aa92e.com":                   "a whole-Cyrillic domain label (аррӏе) given as its A-label",
		"\u0441\u043e\u0440@example.com":             "a whole-Cyrillic local part reading as ASCII (сор)",
		"\uff41\uff44\uff4d\uff49\uff4e@example.com": "fullwidth local part",
		"adm\u0131n@example.com":                     "dotless ı in the local part",
		"admin@g\u0131thub.com":                      "dotless ı in the domain",
		"\u212aevin@example.com":                     "KELVIN SIGN, which NFC turns into K",
		"ADM\u0130N@example.com":                     "İ, which lower-cases to an ASCII i",
		"\ufb01le@example.com":                       "the fi ligature",
		"x\u00b2@example.com":                        "a superscript",
		"ivan.\u0438\u0432\u0430\u043d@example.com":  "Latin and Cyrillic in one local part",
		"admin@example.com\u0000":                    "NUL",
	} {
		_, err := gatehouse.ParseEmail(in)
		require.Error(t, err, "%s: %q", why, in)
		require.Equal(t, gatehouse.CodeInvalidEmail, gatehouse.ErrorCode(err), "%s: %v", why, err)
		var ge *gatehouse.Error
		require.ErrorAs(t, err, &ge)
		require.Equal(t, []string{"email"}, locations(ge), why)
	}
}

// What the normaliser maps, it maps because it is the same address: case,
// composed accents, the domain as every resolver reads it (IDNA lookup
// mapping: width and case) and stored as A-labels.
func TestParseEmailNormalises(t *testing.T) {
	for in, want := range map[string]string{
		"Alice@Example.COM":            "alice@example.com",
		"jose\u0301@example.com":       "jos\u00e9@example.com",
		"J\u00dcRGEN@B\u00fccher.de":   "j\u00fcrgen@xn--bcher-kva.de",
		"j\u00fcrgen@xn--bcher-kva.de": "j\u00fcrgen@xn--bcher-kva.de",
		"admin@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d": "admin@example.com",
		"admin@example\u3002com": "admin@example.com",
		"\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444": "\u0438\u0432\u0430\u043d@xn--e1afmkfd.xn--p1ai",
		"stra\u00dfe@stra\u00dfe.de":   "stra\u00dfe@xn--strae-oqa.de",
		"\u674e\u96f7@\u4f8b\u3048.jp": "\u674e\u96f7@xn--r8jz45g.jp",
		"\u00e6ble@example.dk":         "\u00e6ble@example.dk",
	} {
		e, err := gatehouse.ParseEmail(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, e.String(), "%q", in)
	}
}

func locations(e *gatehouse.Error) []string {
	out := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		out = append(out, f.Location)
	}
	return out
}

// genTricky draws address-like text from a mix of plain, accented,
// foreign, fullwidth, look-alike and invisible characters.
var genTricky = rapid.Custom(func(t *rapid.T) string {
	alphabet := []rune("abcxyzABCXYZ0189.+-_@" +
		"\u00e9\u00fc\u00df\u00e6\u0301\u0308" + // é ü ß æ, combining acute and diaeresis
		"\u0131\u0130\u212a\u017f" + // ı İ KELVIN SIGN ſ
		"\u0430\u043e\u0438\u0432\u03bf\u03bb" + // Cyrillic а о и в, Greek ο λ
		"\u4f8b\u3048\u30a2\ud55c" + // Han, Hiragana, Katakana, Hangul
		"\uff41\uff21\uff0e\u3002" + // fullwidth a A and full stop, ideographic full stop
		"\u200b\u200d\u00ad\u00a0\ufe0f") // ZWSP ZWJ soft hyphen NBSP VS16
	local := rapid.SliceOfN(rapid.SampledFrom(alphabet), 1, 12).Draw(t, "local")
	domain := rapid.SliceOfN(rapid.SampledFrom(alphabet), 1, 12).Draw(t, "domain")
	tld := rapid.SampledFrom([]string{".com", ".de", ".\u0440\u0444", "\uff0ejp", ".xn--p1ai", ""}).Draw(t, "tld")
	return string(local) + "@" + string(domain) + tld
})

// TestPropertyEmail_NormalisationIsIdempotent: an accepted address parses
// again to itself, is NFC, within the lengths, with an ASCII (A-label)
// domain; a refused one is refused with a code a client can act on.
func TestPropertyEmail_NormalisationIsIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genTricky.Draw(t, "in")
		e, err := gatehouse.ParseEmail(in)
		if err != nil {
			require.Contains(t, []gatehouse.Code{gatehouse.CodeInvalidEmail, gatehouse.CodeValidationFailed}, gatehouse.ErrorCode(err), "%q: %v", in, err)
			return
		}
		again, err := gatehouse.ParseEmail(e.String())
		require.NoError(t, err, "%q normalised to %q, which is refused", in, e)
		require.Equal(t, e, again, "%q", in)
		require.True(t, norm.NFC.IsNormalString(e.String()), "%q", e)
		require.LessOrEqual(t, len(e), 254)
		require.LessOrEqual(t, len(e.Local()), 64)
		require.Equal(t, strings.ToLower(e.Local()), e.Local())
		for _, r := range e.Domain() {
			require.Less(t, r, rune(utf8.RuneSelf), "domain %q is not in A-labels", e.Domain())
		}
	})
}

// A look-alike of an existing ASCII address, made by one of the tricks an
// impersonator has, never becomes an address of its own: the tricks that
// are the same address to every mail system (case anywhere; width and the
// ideographic full stop in the domain) normalise to the original, every
// other one is refused.
func TestPropertyEmail_LookAlikesNeverTakeAnotherAddress(t *testing.T) {
	homoglyphs := map[rune][]rune{
		'a': {'\u0430', '\u0251', '\u03b1'}, 'c': {'\u0441', '\u03f2'}, 'e': {'\u0435'},
		'i': {'\u0131', '\u0456', '\u0269', '\u03b9'}, 'j': {'\u0458'}, 'o': {'\u043e', '\u03bf', '\u0585'},
		'p': {'\u0440', '\u03c1'}, 's': {'\u0455'}, 'x': {'\u0445'}, 'y': {'\u0443'},
		'g': {'\u0261'}, 'k': {'\u212a'}, 'v': {'\u03bd'}, 'h': {'\u04bb'},
	}
	invisible := []rune{'\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u034f', '\u180e', '\ufe0f', '\u202e', '\u2066'}
	rapid.Check(t, func(t *rapid.T) {
		local := rapid.StringMatching(`[a-z][a-z0-9]{0,10}`).Draw(t, "local")
		label := rapid.StringMatching(`[a-z][a-z0-9]{0,10}`).Draw(t, "label")
		tld := rapid.SampledFrom([]string{"com", "org", "io", "dev"}).Draw(t, "tld")
		orig := local + "@" + label + "." + tld
		want, err := gatehouse.ParseEmail(orig)
		require.NoError(t, err, orig)

		r := []rune(orig)
		at := strings.IndexRune(orig, '@') // ASCII: byte index is rune index
		// same: the trick keeps the address; inLocal: it changed the local
		// part, where nothing is mapped, so it must be refused. A trick in
		// the domain may also be mapped back by IDNA (KELVIN SIGN to k).
		same, inLocal := false, false
		switch trick := rapid.IntRange(0, 5).Draw(t, "trick"); trick {
		case 0: // case, anywhere
			for i := range r {
				if rapid.Bool().Draw(t, "upper") {
					r[i] = unicode.ToUpper(r[i])
				}
			}
			same = true
		case 1: // fullwidth letters, digits and dots in the domain
			for i := at + 1; i < len(r); i++ {
				if rapid.Bool().Draw(t, "wide") {
					r[i] += 0xff01 - '!'
				}
			}
			if string(r) == orig {
				r[len(r)-1] += 0xff01 - '!'
			}
			same = true
		case 2: // the ideographic full stop for the domain's dot
			r[len(r)-len(tld)-1] = '\u3002'
			same = true
		case 3: // fullwidth in the local part
			i := rapid.IntRange(0, at-1).Draw(t, "at")
			r[i] += 0xff01 - '!'
			inLocal = true
		case 4: // an invisible character anywhere
			i := rapid.IntRange(0, len(r)).Draw(t, "at")
			r = append(r[:i], append([]rune{rapid.SampledFrom(invisible).Draw(t, "invisible")}, r[i:]...)...)
			inLocal = true // refused wherever it stands
		case 5: // a homoglyph for a letter that has one, else an invisible character
			var spots []int
			for i, c := range r {
				if _, ok := homoglyphs[c]; ok {
					spots = append(spots, i)
				}
			}
			if len(spots) == 0 {
				r = append([]rune{'\u200b'}, r...)
				inLocal = true
				break
			}
			i := rapid.SampledFrom(spots).Draw(t, "spot")
			r[i] = rapid.SampledFrom(homoglyphs[r[i]]).Draw(t, "glyph")
			inLocal = i < at
		}
		got, err := gatehouse.ParseEmail(string(r))
		if same {
			require.NoError(t, err, "%q (of %q)", string(r), orig)
			require.Equal(t, want, got, "%q (of %q)", string(r), orig)
			return
		}
		if err == nil && !inLocal {
			require.Equal(t, want, got, "%q, a look-alike of %q, became another address", string(r), orig)
			return
		}
		require.Error(t, err, "%q, a look-alike of %q, became %q", string(r), orig, got)
		require.Equal(t, gatehouse.CodeInvalidEmail, gatehouse.ErrorCode(err), "%q: %v", string(r), err)
	})
}
