package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/config"
)

// readyPath is the readiness endpoint the health check asks.
const readyPath = "/api/v1/health/ready"

// newHealthcheckCmd is the probe for container HEALTHCHECK instructions:
// minimal images have no shell or curl, so the binary asks itself.
func newHealthcheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the local server is ready (for container health checks)",
		Long: "Ask the server on this machine for " + readyPath + " at the port of GATEHOUSE_ADDR " +
			"(on 127.0.0.1 unless GATEHOUSE_ADDR names a host) and exit 0 on 200, else 1 with one line on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load()
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			url, err := readyURL(cfg.Addr)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return checkReady(ctx, url)
		},
	}
	// The server bounds its own checks to about 2 s; leave room for that.
	cmd.Flags().DurationVar(&timeout, "timeout", 4*time.Second, "give up after this long")
	return cmd
}

// readyURL turns a listen address into the URL a local client reaches it
// at: a wildcard or empty host means the loopback address.
func readyURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("GATEHOUSE_ADDR=%q is not host:port", addr)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("GATEHOUSE_ADDR=%q has no fixed port to check", addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + readyPath, nil
}

// checkReady GETs url and returns nil on 200, else an error saying why in
// one line (naming the failing checks when the server says which).
func checkReady(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy from the environment: the server is on this machine.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: not ready: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	var failing []string
	for name, result := range body.Checks {
		if result != "ok" {
			failing = append(failing, name+": "+result)
		}
	}
	sort.Strings(failing)
	msg := fmt.Sprintf("healthcheck: not ready: GET %s answered %s", url, resp.Status)
	if len(failing) > 0 {
		msg += " (" + strings.Join(failing, ", ") + ")"
	}
	return errors.New(msg)
}
