#!/bin/sh
# Makes the build context of deploy/container/Containerfile in DIR: a static,
# version-stamped gatehouse binary from build.sh, the host's CA certificates
# and time zone database, empty data and tmp directories, and the
# Containerfile itself.
#
#   deploy/container/context.sh DIR
#   podman build --format docker -t gatehouse DIR
set -eu
out=${1:?usage: deploy/container/context.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)

for f in /etc/ssl/certs/ca-certificates.crt /usr/share/zoneinfo/UTC; do
	[ -e "$f" ] || { echo "context.sh: $f is missing: apt-get install ca-certificates tzdata" >&2; exit 1; }
done

mkdir -p "$out/data" "$out/tmp"
chmod 1777 "$out/tmp"
"$here/build.sh" "$out/gatehouse"
cp /etc/ssl/certs/ca-certificates.crt "$out/ca-certificates.crt"
rm -rf "$out/zoneinfo"
cp -a /usr/share/zoneinfo "$out/zoneinfo"
cp "$here/Containerfile" "$out/Containerfile"
