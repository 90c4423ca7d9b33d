package password

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Violation codes, stable for API clients that translate or react to
// individual reasons behind a weak_password error.
const (
	CodeTooShort         = "too_short"
	CodeTooLong          = "too_long"
	CodeCommon           = "common"
	CodeContainsPersonal = "contains_personal"
	CodeTooGuessable     = "too_guessable"
	CodeMissingUpper     = "missing_upper"
	CodeMissingLower     = "missing_lower"
	CodeMissingDigit     = "missing_digit"
	CodeMissingSymbol    = "missing_symbol"
)

// Violation is one reason a password was refused: Code for programs,
// Message for people.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Policy decides which new passwords are acceptable. Zero values switch a
// rule off (MaxLength 0 means no maximum), so a partly filled Policy never
// rejects everything by accident; start from DefaultPolicy.
type Policy struct {
	// MinLength and MaxLength count Unicode code points, not bytes, so
	// that non-Latin passwords are not penalised for their encoding.
	MinLength int
	MaxLength int
	// CheckCommon rejects passwords on the embedded common list.
	CheckCommon bool
	// CheckPersonal rejects passwords containing the personal strings
	// given to Check, and lets the strength estimate treat them as known.
	CheckPersonal bool
	// MinStrength is the lowest acceptable Strength score, 0 to 4.
	MinStrength int
	// Composition rules, for deployments whose compliance regime demands
	// them; NIST SP 800-63B advises against them, hence off by default.
	RequireUpper, RequireLower, RequireDigit, RequireSymbol bool
}

// DefaultPolicy is the policy of the API documentation: 12 to 128
// characters, not common, not personal, strength at least 3, and no
// composition rules.
func DefaultPolicy() Policy {
	return Policy{
		MinLength:     12,
		MaxLength:     128,
		CheckCommon:   true,
		CheckPersonal: true,
		MinStrength:   3,
	}
}

// minPersonalLen is the shortest personal piece worth refusing: shorter
// ones ("Al", "jo") occur in too many unrelated passwords.
const minPersonalLen = 3

// Check returns every reason password breaks the policy, or nil if it is
// acceptable. personal holds the account's email address and name (any
// number of strings; a string containing '@' is treated as an email).
// All reasons are returned at once so a user can fix them in one go.
func (p Policy) Check(password string, personal ...string) []Violation {
	var vs []Violation
	add := func(code, msg string, args ...any) {
		vs = append(vs, Violation{Code: code, Message: fmt.Sprintf(msg, args...)})
	}
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		add(CodeTooShort, "Use at least %d characters.", p.MinLength)
	}
	if p.MaxLength > 0 && n > p.MaxLength {
		add(CodeTooLong, "Use at most %d characters.", p.MaxLength)
	}
	var hasUpper, hasLower, hasDigit, hasSymbol bool
	for _, r := range password {
		switch {
		case unicode.IsUpper(r):
			hasUpper = true
		case unicode.IsLower(r):
			hasLower = true
		}
		switch {
		case unicode.IsDigit(r):
			hasDigit = true
		case !unicode.IsLetter(r):
			hasSymbol = true
		}
	}
	if p.RequireUpper && !hasUpper {
		add(CodeMissingUpper, "Include an upper-case letter.")
	}
	if p.RequireLower && !hasLower {
		add(CodeMissingLower, "Include a lower-case letter.")
	}
	if p.RequireDigit && !hasDigit {
		add(CodeMissingDigit, "Include a digit.")
	}
	if p.RequireSymbol && !hasSymbol {
		add(CodeMissingSymbol, "Include a symbol, punctuation mark or space.")
	}
	if p.CheckCommon && isCommon(password) {
		add(CodeCommon, "This is a commonly used password; choose one that is not on breach lists.")
	}
	if !p.CheckPersonal {
		personal = nil
	}
	if containsPersonal(password, personal) {
		add(CodeContainsPersonal, "Do not include your email address or name.")
	}
	if p.MinStrength > 0 && Strength(password, personal...) < p.MinStrength {
		add(CodeTooGuessable, "This password is too easy to guess; try a few unrelated words or a longer phrase.")
	}
	return vs
}

// personalTokens expands the account's personal strings into the pieces an
// attacker who knows the account would try: the whole email, its local
// part and the words in it (the domain is skipped: "gmail" says nothing
// about the user), and the whole name and each of its words. Pieces are
// lower-cased and those shorter than minPersonalLen runes are dropped.
func personalTokens(personal []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if utf8.RuneCountInString(s) >= minPersonalLen && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	words := func(s string) {
		for _, w := range strings.FieldsFunc(s, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			add(w)
		}
	}
	for _, s := range personal {
		s = string(lowerRunes([]rune(strings.TrimSpace(s))))
		add(s)
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			local := s[:at]
			add(local)
			words(local)
			continue
		}
		words(s)
	}
	return out
}

// containsPersonal reports whether password contains any personal piece,
// ignoring case and leet substitutions ("j0hn" contains "john").
func containsPersonal(password string, personal []string) bool {
	toks := personalTokens(personal)
	if len(toks) == 0 {
		return false
	}
	variants := leetVariants(lowerRunes([]rune(password)))
	for _, tok := range toks {
		for _, tv := range leetVariants([]rune(tok)) {
			for _, pv := range variants {
				if strings.Contains(string(pv), string(tv)) {
					return true
				}
			}
		}
	}
	return false
}
