package gatehouse_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
)

func TestParsePhoneNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550100":      "+14155550100",
		" +44 20 7946 0958": "+442079460958",
		"+33 6 12 34 56 78": "+33612345678",
	} {
		got, err := gatehouse.ParsePhoneNumber("body.phone_number", in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"", "4155550100", "+1", "+999123456789", "+1415555010000000", "phone", "+12", "+1415kjdkfyp", "+1 415 555 O100"} {
		_, err := gatehouse.ParsePhoneNumber("body.phone_number", in)
		require.Error(t, err, in)
		require.Equal(t, gatehouse.CodeValidationFailed, gatehouse.ErrorCode(err))
	}
}
