// Package password hashes passwords with Argon2id and judges new passwords
// against the deployment's password policy.
//
// Hashes are PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so
// the parameters travel with each hash: when an operator raises them,
// existing hashes still verify and Verify reports that the stored hash
// should be replaced on the next successful login.
//
// Passwords are hashed as the exact UTF-8 bytes the client sent: no
// truncation and no Unicode normalisation. Compatibility normalisation
// (NFKC/NFKD) is deliberately not applied because it folds distinct
// characters together (for example "ﬁ" and "fi", full-width and ASCII
// digits), shrinking the password space; and any normalisation, once
// hashes exist, can never be changed without locking users out. Clients
// that need a canonical form should normalise before sending.
//
// Argon2id is memory-hard, so every hash or verify holds Params.Memory KiB
// for its duration. A Hasher caps how many run at once (GOMAXPROCS by
// default), which bounds peak memory at roughly limit × Memory KiB however
// many logins arrive together; callers wait for a slot, and stop waiting
// when their context ends.
//
// The policy follows NIST SP 800-63B: length first, then rejection of
// common or breached passwords, personal data and easily guessed
// structure. Composition rules exist for deployments that must have them
// and are off by default. The common list is the zxcvbn project's password
// frequency list (MIT, Dropbox); see LICENSE-zxcvbn.txt.
package password
