package gatehouse

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Email is a normalised email address: a single addr-spec (dot-atom local
// part, no display name, comments or quoting), at most 254 octets with a
// local part of at most 64.
//
// The local part is in Unicode NFC and lower case; the domain is stored
// as IDNA 2008 A-labels ("xn--bcher-kva.example"), lower case. Two
// spellings that differ only in case, in the composition of accents, or
// in the width or case of the domain's characters are one Email, so they
// are one account. Look-alikes that would be a different address are
// refused instead (see ParseEmail), so that nobody can hold an account
// whose address reads as someone else's.
type Email string

// maxRawEmail bounds the input before any normalisation work: a domain
// typed in fullwidth forms takes three octets per character that maps to
// one, so a valid address may arrive about three times its final size.
const maxRawEmail = 4 * 254

// emailIDNA is the UTS #46 processing of an address's domain: the lookup
// mapping (case, width, the ideographic full stop) that every resolver
// applies, so a mapped domain is the very domain mail would reach;
// non-transitional (IDNA 2008: "ß" stays "ß"); host-name rules (letters,
// digits, hyphens); labels and name within DNS lengths; joiners and
// bidirectional text checked.
var emailIDNA = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.BidiRule(),
)

// invalidEmail is the refusal of an address, naming the request's email
// field.
func invalidEmail(format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: CodeInvalidEmail, Message: msg, Fields: []FieldError{{Location: "email", Message: msg}}}
}

// ParseEmail validates and normalises s. An empty s is validation_failed
// ("email is required"); any other refusal is invalid_email, naming the
// field body.email. Refused:
//   - anything but local@domain with a dot-atom local part (no quotes,
//     comments, spaces or display names);
//   - invisible and formatting characters anywhere (zero-width spaces and
//     joiners, bidirectional controls, soft hyphens, variation selectors,
//     fillers, control and private-use characters, non-characters);
//   - in the local part, characters that Unicode normalisation or lower
//     casing would turn into a different character ("K" KELVIN SIGN, "İ",
//     fullwidth "ａ", ligatures, superscripts): mapping them would put the
//     look-alike into someone else's address, which the mailbox provider
//     need not do;
//   - a domain that is not a valid IDNA 2008 host name;
//   - a local part or domain label mixing scripts (Latin with Cyrillic,
//     say; Han with Hiragana, Katakana, Hangul or Bopomofo, and those with
//     Latin, are allowed as in UTS #39's highly restrictive level);
//   - a local part or domain label whose every non-ASCII letter is a
//     look-alike of an ASCII character (UTS #39 confusables: dotless "ı",
//     Cyrillic "а" or "ѕ"): it reads as an ASCII address it is not.
func ParseEmail(s string) (Email, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", InvalidField("email", "email is required")
	}
	if len(s) > maxRawEmail {
		return "", invalidEmail("email must be at most 254 characters")
	}
	if !utf8.ValidString(s) {
		return "", invalidEmail("email is not a valid address")
	}
	if r, ok := firstInvisible(s); ok {
		return "", invalidEmail("email contains an invisible or formatting character (U+%04X)", r)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", invalidEmail("email is not a valid address: it has no @")
	}
	local, err := normaliseLocal(s[:at])
	if err != nil {
		return "", err
	}
	domain, err := normaliseDomain(s[at+1:])
	if err != nil {
		return "", err
	}
	addr := local + "@" + domain
	if len(addr) > 254 {
		return "", invalidEmail("email must be at most 254 characters")
	}
	return Email(addr), nil
}

// firstInvisible finds a character that shows nothing, or changes how
// others show, so that two addresses that look the same would differ.
// Every kind of white space is in it too (spaces are refused anyway).
func firstInvisible(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp),
			unicode.In(r, unicode.White_Space, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point,
				unicode.Noncharacter_Code_Point),
			!unicode.IsGraphic(r): // unassigned code points
			return r, true
		}
	}
	return 0, false
}

// atextSymbols are the ASCII characters other than letters and digits an
// atom may hold (RFC 5322 3.2.3).
const atextSymbols = "!#$%&'*+-/=?^_`{|}~"

func normaliseLocal(local string) (string, error) {
	if local == "" {
		return "", invalidEmail("email is not a valid address: nothing before the @")
	}
	for _, r := range local {
		switch {
		case r < utf8.RuneSelf && !isASCIIAlnum(r) && r != '.' && !strings.ContainsRune(atextSymbols, r):
			return "", invalidEmail("email is not a valid address: %q is not allowed before the @ (quoted local parts are not accepted)", r)
		case r >= utf8.RuneSelf && norm.NFC.String(string(r)) != string(r):
			// A canonical singleton (KELVIN SIGN, OHM SIGN, GREEK QUESTION
			// MARK, CJK compatibility ideographs): it stands for another
			// character it looks like.
			return "", invalidEmail("email contains %q (U+%04X), which stands for another character; type that one instead", r, r)
		case r >= utf8.RuneSelf && unicode.ToLower(r) < utf8.RuneSelf:
			// "İ" lower-cases to an ASCII "i".
			return "", invalidEmail("email contains %q (U+%04X), which would turn into the ASCII letter %q", r, r, unicode.ToLower(r))
		}
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return "", invalidEmail("email is not a valid address: dots before the @ must stand between other characters")
	}
	// Compose accents typed as combining marks: canonically equivalent
	// spellings are the same text, and RFC 6532 asks for NFC.
	local = norm.NFC.String(strings.ToLower(norm.NFC.String(local)))
	if norm.NFKC.String(local) != local {
		return "", invalidEmail("email contains compatibility characters (fullwidth or halfwidth forms, ligatures, superscripts...) before the @; type the plain characters")
	}
	if len(local) > 64 {
		return "", invalidEmail("email is not a valid address: the part before the @ is longer than 64 octets")
	}
	if err := lookAlike(local, "the part before the @"); err != nil {
		return "", err
	}
	return local, nil
}

func normaliseDomain(domain string) (string, error) {
	ascii, err := emailIDNA.ToASCII(domain)
	if err != nil || ascii == "" {
		return "", invalidEmail("email is not a valid address: %q is not a valid domain name", domain)
	}
	if !strings.Contains(ascii, ".") || strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", invalidEmail("email is not a valid address: the domain must be a name such as example.com, with no empty label or final dot")
	}
	unicodeForm, err := emailIDNA.ToUnicode(ascii)
	if err != nil {
		return "", invalidEmail("email is not a valid address: %q is not a valid domain name", domain)
	}
	for label := range strings.SplitSeq(unicodeForm, ".") {
		if err := lookAlike(label, fmt.Sprintf("the domain label %q", label)); err != nil {
			return "", err
		}
	}
	return ascii, nil
}

func isASCIIAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// lookAlike refuses text (a local part or one domain label, normalised)
// that mixes scripts, or whose every non-ASCII letter imitates an ASCII
// character: either way it can pass for an address it is not.
func lookAlike(text, what string) error {
	scripts := map[string]bool{}
	nonASCII, imitations := 0, 0
	for _, r := range text {
		if r < utf8.RuneSelf {
			if isASCIIAlnum(r) && r > '9' {
				scripts["Latin"] = true
			}
			continue
		}
		nonASCII++
		if sc := scriptOf(r); sc != "" {
			scripts[sc] = true
		}
		if sk := confusables.Skeleton(string(r)); len(sk) == 1 && sk[0] < utf8.RuneSelf {
			imitations++
		}
	}
	if !allowedScripts(scripts) {
		return invalidEmail("email mixes writing systems in %s; such addresses can pass for others", what)
	}
	if nonASCII > 0 && imitations == nonASCII {
		return invalidEmail("email has, in %s, letters that imitate ASCII ones; it would pass for another address", what)
	}
	return nil
}

// scriptOf names r's script, or "" for characters every script shares
// (digits, punctuation, combining marks: Common and Inherited).
func scriptOf(r rune) string {
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// allowedScripts reports whether the scripts may meet in one label: one
// script, or one of the combinations in which Chinese, Japanese and Korean
// are written (with Latin), after UTS #39's highly restrictive level.
func allowedScripts(scripts map[string]bool) bool {
	if len(scripts) <= 1 {
		return true
	}
	for _, allowed := range [][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Bopomofo"},
		{"Latin", "Han", "Hangul"},
	} {
		within := true
		for sc := range scripts {
			if !slices.Contains(allowed, sc) {
				within = false
				break
			}
		}
		if within {
			return true
		}
	}
	return false
}

// String returns the address.
func (e Email) String() string { return string(e) }

// Domain returns the part after the @ (in A-labels).
func (e Email) Domain() string {
	_, d, _ := strings.Cut(string(e), "@")
	return d
}

// Local returns the part before the @.
func (e Email) Local() string {
	l, _, _ := strings.Cut(string(e), "@")
	return l
}
