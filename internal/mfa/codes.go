package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// totpPeriod is the TOTP time step in seconds (RFC 6238's default, which
// every authenticator app uses).
const totpPeriod = 30

// totpStep is the RFC 6238 counter at t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the step, among the current one and one either side,
// whose code is code; 0 when none is. Each candidate is compared in
// constant time.
func matchTOTP(secret string, now time.Time, code string) int64 {
	if len(code) != 6 {
		return 0
	}
	cur := totpStep(now)
	var found int64
	for _, step := range []int64{cur - 1, cur, cur + 1} {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found = step
		}
	}
	return found
}

// TOTPCode is the code of secret (base32) at t; tests and the CLI use it.
func TOTPCode(secret string, t time.Time) (string, error) {
	return hotp.GenerateCodeCustom(secret, uint64(totpStep(t)), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// backupAlphabet is Crockford's base32: no I, L, O or U, so a code read
// aloud or copied by hand survives; 12 characters carry 60 bits.
const backupAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// backupCodeCount is how many backup codes a set has.
const backupCodeCount = 10

// newBackupCodes makes a set of codes formatted XXXX-XXXX-XXXX, and their
// hashes.
func newBackupCodes() (codes []string, hashes [][]byte) {
	for range backupCodeCount {
		var b strings.Builder
		for i := range 12 {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(backupAlphabet[randInt(len(backupAlphabet))])
		}
		codes = append(codes, b.String())
		hashes = append(hashes, backupHash(b.String()))
	}
	return codes, hashes
}

// normalizeBackupCode upper-cases, drops separators and maps the letters
// Crockford's alphabet leaves out to the digits they look like. It answers
// "" for anything that cannot be a backup code.
func normalizeBackupCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if !strings.ContainsRune(backupAlphabet, r) {
			return ""
		}
		b.WriteRune(r)
	}
	if b.Len() != 12 {
		return ""
	}
	return b.String()
}

// backupHash is the stored form of a backup code: codes carry 60 random
// bits, so a plain SHA-256 of the normalised code is enough.
func backupHash(code string) []byte {
	h := sha256.Sum256([]byte("gatehouse-backup-code:" + normalizeBackupCode(code)))
	return h[:]
}

// newSMSCode is six uniformly random digits.
func newSMSCode() string { return fmt.Sprintf("%06d", randInt(1_000_000)) }

// smsHash binds a code to what it was sent for (ref): the same digits sent
// for another challenge hash differently, so a code works only there.
func smsHash(ref, code string) []byte {
	h := sha256.Sum256([]byte("gatehouse-sms-code:" + ref + ":" + code))
	return h[:]
}

func randInt(n int) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("mfa: crypto/rand failed: " + err.Error())
	}
	return v.Int64()
}
