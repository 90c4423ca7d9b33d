package gatehouse

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDescribeBuild(t *testing.T) {
	const sha = "1d625e2eff70f9f2978b997df6690a0b8c90d855"
	vcs := func(version string, modified bool) *debug.BuildInfo {
		m := "false"
		if modified {
			m = "true"
		}
		return &debug.BuildInfo{
			Main: debug.Module{Path: "github.com/gatehouse-auth/gatehouse", Version: version},
			Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: sha}, {Key: "vcs.modified", Value: m},
			},
		}
	}
	noVCS := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	cases := []struct {
		name, linkVersion, linkRevision string
		info                            *debug.BuildInfo
		want                            string
	}{
		{"go test binary", "", "", noVCS, "devel"},
		{"no build info", "", "", nil, "devel"},
		{"checkout, clean, no tag", "", "", vcs("(devel)", false), "devel (1d625e2eff70)"},
		{"checkout, modified", "", "", vcs("(devel)", true), "devel (1d625e2eff70-dirty)"},
		{"pseudo-version names its revision", "", "", vcs("v0.0.0-20261207151853-1d625e2eff70+dirty", true),
			"v0.0.0-20261207151853-1d625e2eff70+dirty"},
		{"tagged checkout", "", "", vcs("v1.4.0", false), "v1.4.0 (1d625e2eff70)"},
		{"ldflags version and revision", "v1.2.3", sha, noVCS, "v1.2.3 (1d625e2eff70)"},
		{"ldflags dirty revision", "", "1d625e2eff70-dirty", noVCS, "devel (1d625e2eff70-dirty)"},
		{"ldflags win over VCS", "v2.0.0", "abcdef012345", vcs("(devel)", true), "v2.0.0 (abcdef012345)"},
		{"ldflags version alone keeps the VCS revision", "v2.0.0", "", vcs("(devel)", false), "v2.0.0 (1d625e2eff70)"},
		{"git describe version names its revision", "v1.2.3-4-g1d625e2eff70-dirty", "1d625e2eff70-dirty", noVCS,
			"v1.2.3-4-g1d625e2eff70-dirty"},
		{"ldflags version alone", "v1.2.3", "", noVCS, "v1.2.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, describeBuild(c.linkVersion, c.linkRevision, c.info))
		})
	}
}
