package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// healthTimeout bounds all checks together: an orchestrator's probe must
// get an answer even when a dependency hangs.
const healthTimeout = 2 * time.Second

// HealthBody is the answer of the health and readiness endpoints.
type HealthBody struct {
	Status  string            `json:"status" enum:"ok,degraded" doc:"ok when every check passed, degraded otherwise."`
	Checks  map[string]string `json:"checks" doc:"One entry per dependency: \"ok\" or a short reason such as \"timeout\" or \"unavailable\"." example:"{\"database\":\"ok\",\"cache\":\"ok\",\"queue\":\"ok\"}"`
	Version string            `json:"version" doc:"The server's build version." example:"1.0.0"`
	// Features never affect the status.
	Features map[string]string `json:"features,omitempty" doc:"Optional capabilities and whether they are on, e.g. geoip: \"enabled\" or \"disabled\" (GATEHOUSE_GEOIP_DB); they never affect the status." example:"{\"geoip\":\"disabled\"}"`
}

type healthOutput struct {
	Status int
	Body   HealthBody
}

// LiveBody is the answer of the liveness endpoint.
type LiveBody struct {
	Status string `json:"status" enum:"ok" doc:"Always ok: the process is serving."`
}

type liveOutput struct {
	Body LiveBody
}

func (s *Server) registerHealth() {
	reg := s.api.OpenAPI().Components.Schemas
	unhealthy := func() map[string]*huma.Response {
		return map[string]*huma.Response{
			"503": {
				Description: "A required check (database, queue) failed; the body says which.",
				Content: map[string]*huma.MediaType{
					"application/json": {Schema: reg.Schema(reflect.TypeFor[HealthBody](), true, "HealthBody")},
				},
			},
		}
	}

	huma.Register(s.api, huma.Operation{
		OperationID: "get-health",
		Method:      http.MethodGet,
		Path:        "/health",
		Summary:     "Check health",
		Description: "Runs every dependency check (database, cache, queue) concurrently, within about two seconds. " +
			"Answers 503 when this instance cannot serve sign-ins (the database or the job queue in it fails), " +
			"200 with status degraded when only an optional dependency fails (Redis: the instance serves in its degraded mode, " +
			"with in-process rate limits and caches read from the database), and 200 ok when all pass. The body is the same shape either way.",
		Tags:      []string{TagOperations},
		Responses: unhealthy(),
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		return s.health(ctx), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-health-ready",
		Method:      http.MethodGet,
		Path:        "/health/ready",
		Summary:     "Check readiness",
		Description: "For load balancers and orchestrators: 503 only while this instance cannot serve sign-ins (database or queue down); " +
			"200 otherwise, with status degraded and the failing check named while Redis is unreachable, so a Redis outage does not take every instance out at once.",
		Tags:      []string{TagOperations},
		Responses: unhealthy(),
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		return s.health(ctx), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-health-live",
		Method:      http.MethodGet,
		Path:        "/health/live",
		Summary:     "Check liveness",
		Description: "200 whenever the process is serving requests; it checks no dependency.",
		Tags:        []string{TagOperations},
	}, func(context.Context, *struct{}) (*liveOutput, error) {
		return &liveOutput{Body: LiveBody{Status: "ok"}}, nil
	})
}

// health runs the checks concurrently under one deadline.
func (s *Server) health(ctx context.Context) *healthOutput {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()

	results := make([]string, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() {
			results[i] = s.runCheck(ctx, c)
		})
	}
	wg.Wait()

	out := &healthOutput{
		Status: http.StatusOK,
		Body:   HealthBody{Status: "ok", Checks: make(map[string]string, len(s.checks)), Version: s.version, Features: s.features},
	}
	for i, c := range s.checks {
		out.Body.Checks[c.Name] = results[i]
		if results[i] != "ok" {
			out.Body.Status = "degraded"
			if !c.Optional {
				out.Status = http.StatusServiceUnavailable
			}
		}
	}
	return out
}

// runCheck runs one check and returns "ok" or a short reason. A check that
// overruns the deadline is reported as a timeout without waiting for it; a
// panicking check is reported, not fatal.
func (s *Server) runCheck(ctx context.Context, c HealthCheck) (result string) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- errors.New("check panicked")
			}
		}()
		done <- c.Check(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return "ok"
	}
	telemetry.Logger(ctx).LogAttrs(ctx, slog.LevelWarn, "health check failed",
		slog.String("check", c.Name), slog.String("error", err.Error()))
	var ge *gatehouse.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ge) && ge.Message != "":
		return ge.Message
	default:
		return "unavailable"
	}
}
