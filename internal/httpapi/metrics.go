package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

type metricsOutput struct {
	Body func(huma.Context)
}

func (s *Server) registerMetrics() {
	huma.Register(s.api, huma.Operation{
		OperationID: "get-metrics",
		Method:      http.MethodGet,
		Path:        "/metrics",
		Summary:     "Get Prometheus metrics",
		Description: "Process, runtime, database pool and HTTP metrics in the Prometheus text format " +
			"(OpenMetrics when the scraper asks for it). HTTP metrics are labelled by route pattern, never by raw path.",
		Tags: []string{TagOperations},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "The metrics.",
				Content: map[string]*huma.MediaType{
					"text/plain; version=0.0.4": {Schema: &huma.Schema{Type: huma.TypeString}},
				},
			},
		},
	}, func(context.Context, *struct{}) (*metricsOutput, error) {
		return &metricsOutput{Body: func(hctx huma.Context) {
			r, w := humago.Unwrap(hctx)
			s.metrics.Handler().ServeHTTP(w, r)
		}}, nil
	})
}
