package cache

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// redact guards against dependencies that print credentials; none of the
// current ones do, so exercise it directly.
func TestRedact(t *testing.T) {
	cause := errors.New("auth failed for p@ss word and p%40ss+word")
	err := redact(cause, "", "p@ss word")
	require.Equal(t, "auth failed for xxxxx and xxxxx", err.Error())
	require.ErrorIs(t, err, cause)
	require.Same(t, cause, redact(cause, "absent"), "an error without secrets is returned as is")
}
