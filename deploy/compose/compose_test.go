// Package compose checks deploy/compose/compose.yaml with the Compose
// specification's own loader (schema validation, interpolation, anchors,
// path resolution), and the Prometheus and Grafana files it mounts.
package compose

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// load loads compose.yaml as `docker compose --env-file envFile` would,
// without the test's own environment.
func load(t *testing.T, composeFile, envFile string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
	)
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

func loadExample(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, "compose.yaml", ".env.example")
	require.NoError(t, err)
	return p
}

// dotenv reads .env.example the simple way, to compare with what the
// loader made of it.
func dotenv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(".env.example")
	require.NoError(t, err)
	env := map[string]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

func TestComposeServices(t *testing.T) {
	p := loadExample(t)
	require.Equal(t, "gatehouse", p.Name)
	require.ElementsMatch(t, []string{"gatehouse-1", "gatehouse-2", "postgres", "redis", "mailpit", "prometheus", "grafana"}, p.ServiceNames())
	require.True(t, strings.HasPrefix(p.Services["postgres"].Image, "postgres:16"), p.Services["postgres"].Image)
	require.True(t, strings.HasPrefix(p.Services["redis"].Image, "redis:7"), p.Services["redis"].Image)
	require.True(t, strings.HasPrefix(p.Services["mailpit"].Image, "axllent/mailpit:"))
	require.True(t, strings.HasPrefix(p.Services["prometheus"].Image, "prom/prometheus:"))
	require.True(t, strings.HasPrefix(p.Services["grafana"].Image, "grafana/grafana:"))

	for name, s := range p.Services {
		// Every service says when it is healthy, and pulled images are pinned.
		require.NotNil(t, s.HealthCheck, name)
		require.False(t, s.HealthCheck.Disable, name)
		require.NotEmpty(t, s.HealthCheck.Test, name)
		if s.Build == nil {
			require.Regexp(t, `:[0-9v][^:]*$`, s.Image, "%s: pin the image", name)
		}
		// Whatever a service waits for, it waits for it to be healthy.
		for dep, d := range s.DependsOn {
			require.Equal(t, types.ServiceConditionHealthy, d.Condition, "%s depends on %s", name, dep)
		}
	}
}

func TestComposeGatehouseInstances(t *testing.T) {
	p := loadExample(t)
	env := dotenv(t)
	published := map[string]bool{}
	for _, name := range []string{"gatehouse-1", "gatehouse-2"} {
		s := p.Services[name]
		require.NotNil(t, s.Build, "%s builds from the Dockerfile", name)
		require.Equal(t, "Dockerfile", s.Build.Dockerfile)
		abs, err := filepath.Abs("../..")
		require.NoError(t, err)
		require.Equal(t, abs, s.Build.Context)
		require.Equal(t, env["GATEHOUSE_IMAGE"], s.Image)
		require.Equal(t, types.HealthCheckTest{"CMD", "/gatehouse", "healthcheck"}, s.HealthCheck.Test, name)

		for _, dep := range []string{"postgres", "redis", "mailpit"} {
			require.Contains(t, s.DependsOn, dep, name)
		}

		// Both instances on the same database, cache and mail, with the
		// secrets of the env file.
		get := func(k string) string {
			v := s.Environment[k]
			require.NotNil(t, v, "%s: %s", name, k)
			return *v
		}
		require.Equal(t, "postgres://gatehouse:"+env["POSTGRES_PASSWORD"]+"@postgres:5432/gatehouse?sslmode=disable", get("GATEHOUSE_DATABASE_URL"))
		require.Equal(t, "redis://:"+env["REDIS_PASSWORD"]+"@redis:6379/0", get("GATEHOUSE_REDIS_URL"))
		require.Equal(t, env["GATEHOUSE_SECRET_KEY"], get("GATEHOUSE_SECRET_KEY"))
		require.GreaterOrEqual(t, len(get("GATEHOUSE_SECRET_KEY")), 32, "Gatehouse refuses a shorter master key")
		require.Equal(t, env["GATEHOUSE_PUBLIC_URL"], get("GATEHOUSE_PUBLIC_URL"), "one issuer for both instances")
		smtp, err := url.Parse(get("GATEHOUSE_SMTP_URL"))
		require.NoError(t, err)
		require.Equal(t, "mailpit:1025", smtp.Host)
		require.Equal(t, "none", smtp.Query().Get("tls"))

		// Hardened as the image allows: read-only root, /tmp in memory,
		// no capabilities, no privilege escalation.
		require.True(t, s.ReadOnly, name)
		require.Contains(t, s.Tmpfs, "/tmp", name)
		require.Equal(t, []string{"ALL"}, s.CapDrop, name)
		require.Contains(t, s.SecurityOpt, "no-new-privileges:true", name)

		require.Len(t, s.Ports, 1, name)
		require.EqualValues(t, 8080, s.Ports[0].Target, name)
		require.False(t, published[s.Ports[0].Published], "%s: port %s published twice", name, s.Ports[0].Published)
		published[s.Ports[0].Published] = true
	}
	_, port, err := net.SplitHostPort(strings.TrimPrefix(env["GATEHOUSE_PUBLIC_URL"], "http://"))
	require.NoError(t, err)
	require.True(t, published[port], "GATEHOUSE_PUBLIC_URL reaches an instance")
}

func TestComposeVolumes(t *testing.T) {
	p := loadExample(t)
	// Data that must survive lives in named volumes.
	for service, target := range map[string]string{
		"postgres":    "/var/lib/postgresql/data",
		"redis":       "/data",
		"mailpit":     "/data",
		"prometheus":  "/prometheus",
		"grafana":     "/var/lib/grafana",
		"gatehouse-1": "/data",
		"gatehouse-2": "/data",
	} {
		var found bool
		for _, v := range p.Services[service].Volumes {
			if v.Target == target {
				found = true
				require.Equal(t, types.VolumeTypeVolume, v.Type, "%s:%s", service, target)
				require.Contains(t, p.Volumes, v.Source, "%s: volume %s is declared", service, v.Source)
			}
		}
		require.True(t, found, "%s has a volume at %s", service, target)
	}
	// What is mounted from the repository exists and is mounted read-only.
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			require.True(t, v.ReadOnly, "%s: %s", name, v.Source)
			_, err := os.Stat(v.Source)
			require.NoError(t, err, "%s mounts %s", name, v.Source)
		}
	}
}

// Secrets have no defaults: without the env file Compose refuses to start
// and names the missing variable.
func TestComposeNeedsSecretsFromEnvFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.env")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err := load(t, "compose.yaml", empty)
	require.Error(t, err)
	require.Regexp(t, `(POSTGRES_PASSWORD|REDIS_PASSWORD|GATEHOUSE_SECRET_KEY|GRAFANA_ADMIN_PASSWORD)`, err.Error())

	// Each secret alone is required.
	for _, secret := range []string{"POSTGRES_PASSWORD", "REDIS_PASSWORD", "GATEHOUSE_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD"} {
		var b strings.Builder
		for k, v := range dotenv(t) {
			if k != secret {
				fmt.Fprintf(&b, "%s=%s\n", k, v)
			}
		}
		f := filepath.Join(t.TempDir(), "partial.env")
		require.NoError(t, os.WriteFile(f, []byte(b.String()), 0o600))
		_, err := load(t, "compose.yaml", f)
		require.ErrorContains(t, err, "set "+secret+" in .env", secret)
	}
}

// The loader validates against the Compose schema: a misspelt key fails,
// so the other tests' passing means something.
func TestComposeSchemaIsEnforced(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	bad := strings.Replace(string(b), "    healthcheck:\n      test: [\"CMD\", \"pg_isready\"", "    helthcheck:\n      test: [\"CMD\", \"pg_isready\"", 1)
	require.NotEqual(t, string(b), bad)
	f := filepath.Join(t.TempDir(), "compose.yaml")
	require.NoError(t, os.WriteFile(f, []byte(bad), 0o600))
	env, err := filepath.Abs(".env.example")
	require.NoError(t, err)
	_, err = load(t, f, env)
	require.ErrorContains(t, err, "helthcheck")
}

// prometheusConfig is the part of prometheus.yml this deployment relies on;
// unknown fields fail the strict decode.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		MetricsPath   string `json:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

func TestPrometheusScrapesBothInstances(t *testing.T) {
	b, err := os.ReadFile("../prometheus/prometheus.yml")
	require.NoError(t, err)
	var cfg prometheusConfig
	require.NoError(t, yaml.UnmarshalStrict(b, &cfg))
	require.Contains(t, cfg.RuleFiles, "alerts.yaml", "the observability alert rules")

	p := loadExample(t)
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "gatehouse" {
			continue
		}
		require.Equal(t, "/api/v1/metrics", sc.MetricsPath)
		for _, s := range sc.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
	}
	var want []string
	for _, name := range []string{"gatehouse-1", "gatehouse-2"} {
		want = append(want, fmt.Sprintf("%s:%d", name, p.Services[name].Ports[0].Target))
	}
	require.ElementsMatch(t, want, targets)

	// Prometheus reads this directory, where alerts.yaml goes too.
	var mounted bool
	for _, v := range p.Services["prometheus"].Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == "/etc/prometheus" {
			abs, err := filepath.Abs("../prometheus")
			require.NoError(t, err)
			require.Equal(t, abs, v.Source)
			mounted = true
		}
	}
	require.True(t, mounted)
	require.True(t, slices.Contains(p.Services["prometheus"].Command, "--config.file=/etc/prometheus/prometheus.yml"))
}

type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Type      string `json:"type"`
		Access    string `json:"access"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
		Editable  bool   `json:"editable"`
	} `json:"datasources"`
}

type grafanaDashboards struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		Folder                string `json:"folder"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion"`
		AllowUIUpdates        bool   `json:"allowUiUpdates"`
		UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
		Options               struct {
			Path string `json:"path"`
		} `json:"options"`
	} `json:"providers"`
}

func TestGrafanaProvisioning(t *testing.T) {
	p := loadExample(t)
	mounts := map[string]string{} // target -> source
	for _, v := range p.Services["grafana"].Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[v.Target] = v.Source
		}
	}
	provisioning, err := filepath.Abs("../grafana/provisioning")
	require.NoError(t, err)
	require.Equal(t, provisioning, mounts["/etc/grafana/provisioning"])

	b, err := os.ReadFile("../grafana/provisioning/datasources/prometheus.yaml")
	require.NoError(t, err)
	var ds grafanaDatasources
	require.NoError(t, yaml.UnmarshalStrict(b, &ds))
	require.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.Equal(t, "prometheus", ds.Datasources[0].UID, "dashboards refer to this uid")
	u, err := url.Parse(ds.Datasources[0].URL)
	require.NoError(t, err)
	require.Contains(t, p.Services, u.Hostname(), "the data source is the Compose service")
	require.Equal(t, "9090", u.Port())

	b, err = os.ReadFile("../grafana/provisioning/dashboards/gatehouse.yaml")
	require.NoError(t, err)
	var dash grafanaDashboards
	require.NoError(t, yaml.UnmarshalStrict(b, &dash))
	require.Len(t, dash.Providers, 1)
	require.Equal(t, "file", dash.Providers[0].Type)
	dashboards, err := filepath.Abs("../grafana/dashboards")
	require.NoError(t, err)
	require.Equal(t, dashboards, mounts[dash.Providers[0].Options.Path], "the provider reads the mounted deploy/grafana/dashboards")
}
