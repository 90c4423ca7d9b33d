package container

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined and its keyword upper-cased.
type instruction struct{ keyword, args string }

func (i instruction) String() string { return i.keyword + " " + i.args }

// parseDockerfile reads the instructions of a Dockerfile: comments and
// blank lines dropped, backslash continuations joined.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []instruction
	var cur strings.Builder
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more)
			continue
		}
		cur.WriteString(line)
		keyword, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(keyword), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	require.Zero(t, cur.Len(), "%s ends in a continuation", path)
	return out
}

// finalStage is what follows the last FROM, the FROM included.
func finalStage(ins []instruction) []instruction {
	last := 0
	for i, in := range ins {
		if in.keyword == "FROM" {
			last = i
		}
	}
	return ins[last:]
}

// runtimeConfig is the final stage without FROM and COPY: what the image
// is, as opposed to where its files come from.
func runtimeConfig(ins []instruction) []string {
	var out []string
	for _, in := range finalStage(ins) {
		if in.keyword != "FROM" && in.keyword != "COPY" {
			out = append(out, in.String())
		}
	}
	return out
}

// The root Dockerfile cannot be built here (no base image can be pulled),
// so its shape is checked, and its final stage must configure the image
// exactly as the Containerfile that the podman test builds and runs.
func TestDockerfileMatchesTestedContainerfile(t *testing.T) {
	docker := parseDockerfile(t, "../../Dockerfile")
	podman := parseDockerfile(t, "Containerfile")

	var froms []string
	for _, in := range docker {
		if in.keyword == "FROM" {
			froms = append(froms, in.args)
		}
	}
	require.Len(t, froms, 2, "multi-stage: a builder and the final image")
	require.Regexp(t, `^golang:\$\{GO_VERSION\}-\S+ AS build$`, froms[0])
	require.Regexp(t, `^(scratch|gcr\.io/distroless/static\S*)$`, froms[1])
	require.Equal(t, "FROM scratch", finalStage(podman)[0].String())

	var builds int
	for _, in := range docker {
		if in.keyword == "RUN" && strings.Contains(in.args, "deploy/container/build.sh /out/gatehouse") {
			builds++
		}
	}
	require.Equal(t, 1, builds, "the builder builds with build.sh, as context.sh does")

	want := []string{
		"ENV GATEHOUSE_ADDR=:8080 GATEHOUSE_DATA_DIR=/data",
		"USER 65532:65532",
		"EXPOSE 8080",
		"VOLUME /data",
		`HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/gatehouse", "healthcheck"]`,
		`ENTRYPOINT ["/gatehouse"]`,
		`CMD ["serve"]`,
	}
	require.Equal(t, want, runtimeConfig(docker), "Dockerfile")
	require.Equal(t, want, runtimeConfig(podman), "Containerfile")

	// Both put the binary at /gatehouse and give /data to the user.
	for name, ins := range map[string][]instruction{"Dockerfile": docker, "Containerfile": podman} {
		var copies []string
		for _, in := range finalStage(ins) {
			if in.keyword == "COPY" {
				copies = append(copies, in.args)
			}
		}
		require.Contains(t, strings.Join(copies, "\n"), "gatehouse /gatehouse", name)
		require.Regexp(t, regexp.MustCompile(`(?m)^(--from=build )?--chown=65532:65532 \S*data /data$`), strings.Join(copies, "\n"), name)
	}
}

// build.sh makes the static, stamped, path-free binary the issue asks for.
func TestBuildScriptFlags(t *testing.T) {
	b, err := os.ReadFile("build.sh")
	require.NoError(t, err)
	script := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0 go build -trimpath",
		"-X $pkg.version=$version",
		"-X $pkg.revision=$revision",
		"pkg=github.com/gatehouse-auth/gatehouse\n",
	} {
		require.Contains(t, script, want)
	}
	// .env may hold secrets: it never enters an image's build context.
	ignore, err := os.ReadFile("../../.dockerignore")
	require.NoError(t, err)
	require.Contains(t, strings.Fields(string(ignore)), ".env")
}
