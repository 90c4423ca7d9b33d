package gatehouse_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The layers of the module, bottom up (DESIGN.md "Shape"). A package may
// import only from lower layers, and a capability never imports another
// capability: what it needs from one, it declares as a small interface.
var (
	// infrastructure: below every capability.
	infrastructure = []string{
		"internal/store", "internal/store/sqlstore", "internal/cache", "internal/jobs", "internal/token",
		"internal/keys", "internal/secret", "internal/password", "internal/telemetry", "internal/config",
		"internal/fingerprint", "internal/ratelimit", "internal/outbound/mail", "internal/outbound/sms",
	}
	// capabilities: peers.
	capabilities = []string{
		"internal/account", "internal/audit", "internal/authz", "internal/device", "internal/events",
		"internal/mfa", "internal/notify", "internal/oauth", "internal/passkey", "internal/risk",
		"internal/session", "internal/webhook",
	}
	// orchestration: they run flows across capabilities.
	orchestration = []string{"internal/signin", "internal/web", "internal/oidcprovider"}
)

// maxFloors bounds the import graph's depth: the longest chain of our own
// packages, counted in packages, from a command or test harness down to
// the root.
const maxFloors = 7

const module = "github.com/gatehouse-auth/gatehouse"

type listed struct {
	ImportPath string
	Imports    []string
}

// ownPackages lists every package of the module (test helpers included,
// _test files not) with the module's packages each imports.
func ownPackages(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	require.NoError(t, err, "go list")
	dec := json.NewDecoder(strings.NewReader(string(out)))
	graph := map[string][]string{}
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		name := rel(p.ImportPath)
		graph[name] = nil
		for _, imp := range p.Imports {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				graph[name] = append(graph[name], rel(imp))
			}
		}
	}
	return graph
}

func rel(path string) string {
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}

// layerOf answers a package's layer: 0 root, 1 infrastructure, 2
// capability, 3 orchestration, -1 the rest (HTTP, wiring, test helpers).
// A sub-package of a capability (risk's test helpers) belongs to nobody.
func layerOf(pkg string) int {
	switch {
	case pkg == ".":
		return 0
	case slices.Contains(infrastructure, pkg):
		return 1
	case slices.Contains(capabilities, pkg):
		return 2
	case slices.Contains(orchestration, pkg):
		return 3
	}
	return -1
}

// TestLayering fails on an import that runs against the layers: a
// capability importing another, or anything importing from its own layer
// or above, as River enforces its driver layering.
func TestLayering(t *testing.T) {
	graph := ownPackages(t)
	for _, pkg := range capabilities {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("%s is listed as a capability but is not a package", pkg)
		}
	}
	for pkg, imports := range graph {
		from := layerOf(pkg)
		for _, imp := range imports {
			to := layerOf(imp)
			switch {
			case from == 2 && to == 2:
				t.Errorf("capability %s imports capability %s: declare a small interface instead", pkg, imp)
			case from >= 0 && to >= from && !(from == 1 && to == 1):
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point down", pkg, from, imp, to)
			case from >= 0 && to == -1:
				t.Errorf("%s (layer %d) imports %s, which is above every layer", pkg, from, imp)
			}
		}
	}
}

// TestImportDepth bounds the longest chain of imports between our own
// packages to maxFloors and names it when it is longer.
func TestImportDepth(t *testing.T) {
	graph := ownPackages(t)
	depth := map[string]int{}
	var floors func(string) int
	floors = func(p string) int {
		if d, ok := depth[p]; ok {
			return d
		}
		d := 1
		for _, imp := range graph[p] {
			d = max(d, 1+floors(imp))
		}
		depth[p] = d
		return d
	}
	deepest := ""
	for p := range graph {
		if deepest == "" || floors(p) > floors(deepest) || (floors(p) == floors(deepest) && p < deepest) {
			deepest = p
		}
	}
	chain := []string{deepest}
	for p := deepest; len(graph[p]) > 0; {
		next := graph[p][0]
		for _, imp := range graph[p] {
			if floors(imp) > floors(next) {
				next = imp
			}
		}
		chain = append(chain, next)
		p = next
	}
	t.Logf("deepest chain (%d floors): %s", len(chain), strings.Join(chain, " -> "))
	require.LessOrEqual(t, len(chain), maxFloors, strings.Join(chain, " -> "))
}
