package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// A device id in the path that cannot be one of ours (invalid UTF-8, NUL,
// not a UUID) is the 404 of an unknown device on both engines, never a
// 500 from PostgreSQL refusing the bytes.
func TestDeviceBadPathIDIsNotFound(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			env.Register("dora@example.com", apptest.StrongPassword)
			tok := env.Login("dora@example.com", apptest.StrongPassword).Access
			for _, id := range []string{"%FF", "%00", "a%00b", "%FF%FE", "0195f3a2-0000-7000-8000-00000000000%00", "0195F3A2-0000-7000-8000-000000000000"} {
				apptest.Expect(t, env.Do("PUT", "/devices/"+id+"/trust", map[string]any{"trusted": true}, tok), http.StatusNotFound, "not_found", "PUT %s", id)
				apptest.Expect(t, env.Do("DELETE", "/devices/"+id, nil, tok), http.StatusNotFound, "not_found", "DELETE %s", id)
			}
		})
	}
}
