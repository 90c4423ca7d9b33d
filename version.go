package gatehouse

import (
	"runtime/debug"
	"strings"
)

// Link-time overrides, for builds where the go command cannot read the VCS
// (a container build without .git, a git worktree, GOFLAGS=-buildvcs=false):
//
//	-ldflags "-X github.com/gatehouse-auth/gatehouse.version=v1.2.3
//	          -X github.com/gatehouse-auth/gatehouse.revision=$(git describe --always --dirty --abbrev=12 --exclude='*')"
//
// Empty values count as unset, so a build script may pass them unconditionally.
var (
	version  = ""
	revision = ""
)

// Version reports what this build is: the module version and the VCS
// revision, e.g. "v1.2.3 (1d625e2eff70)", "devel (1d625e2eff70-dirty)" or a
// pseudo-version such as "v0.0.0-20261207151853-1d625e2eff70+dirty", which
// already names its revision. It is "devel" alone only when the build
// recorded neither (go test binaries, -buildvcs=false without -ldflags).
// The CLI's `version` command and the health endpoints report this string.
func Version() string {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, revision, info)
}

// describeBuild is Version with its inputs explicit, for tests.
func describeBuild(linkVersion, linkRevision string, info *debug.BuildInfo) string {
	v, rev := linkVersion, linkRevision
	var vcsRev string
	var modified bool
	if info != nil {
		if v == "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "" && vcsRev != "" {
		rev = shortRevision(vcsRev)
		if modified {
			rev += "-dirty"
		}
	} else {
		rev = shortRevision(rev)
	}
	if v == "" {
		v = "devel"
	}
	if rev == "" {
		return v
	}
	// A pseudo-version (v0.0.0-<time>-<rev12>) or a git-describe version
	// (v1.2.3-4-g<rev>) names its revision already.
	if hex := revisionHex(rev); len(hex) >= 7 && strings.Contains(v, hex[:7]) {
		return v
	}
	return v + " (" + rev + ")"
}

// shortRevision cuts a full commit id to 12 hex digits, keeping any suffix
// such as "-dirty".
func shortRevision(rev string) string {
	hex := revisionHex(rev)
	if len(hex) <= 12 {
		return rev
	}
	return hex[:12] + rev[len(hex):]
}

// revisionHex is the leading run of hex digits of a revision.
func revisionHex(rev string) string {
	end := strings.IndexFunc(rev, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f')
	})
	if end < 0 {
		return rev
	}
	return rev[:end]
}
