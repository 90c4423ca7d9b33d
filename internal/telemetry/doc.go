// Package telemetry holds Gatehouse's observability plumbing: structured
// logging with log/slog (and a request-scoped logger carried in the
// context), the Prometheus registry with the HTTP and database metrics, and
// OpenTelemetry tracing set up from the standard OTEL_* variables.
//
// It knows nothing about the domain or about HTTP routing; httpapi feeds it.
package telemetry
