package token

// VerifiedLen is how many verified tokens s remembers.
func VerifiedLen(s *Service) int { return s.verified.len() }
