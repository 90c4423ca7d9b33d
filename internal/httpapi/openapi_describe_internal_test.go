package httpapi

import (
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIOperationProblemsNameOperations keeps operationProblems
// honest: an operation renamed or removed must not leave its errors
// documented nowhere.
func TestOpenAPIOperationProblemsNameOperations(t *testing.T) {
	ids := map[string]bool{}
	for _, item := range New(Deps{}).api.OpenAPI().Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op != nil {
				ids[op.OperationID] = true
			}
		}
	}
	for id := range operationProblems {
		require.True(t, ids[id], "operationProblems documents %q, which is no operation", id)
	}
}
