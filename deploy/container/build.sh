#!/bin/sh
# Builds a static gatehouse binary at FILE from this checkout, with its
# version and git revision stamped by -ldflags (which works in git worktrees,
# without git, and whatever GOFLAGS says about -buildvcs). The root
# Dockerfile and context.sh both use it.
#
#   deploy/container/build.sh FILE
#
# VERSION and REVISION override what git says: the tag on HEAD (v*), and the
# abbreviated commit with -dirty for uncommitted changes.
set -eu
out=${1:?usage: deploy/container/build.sh FILE}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)

version=${VERSION-$(git -C "$root" describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null || true)}
revision=${REVISION-$(git -C "$root" describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || true)}
pkg=github.com/gatehouse-auth/gatehouse

cd "$root"
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X $pkg.version=$version -X $pkg.revision=$revision" \
	-o "$out" ./cmd/gatehouse
