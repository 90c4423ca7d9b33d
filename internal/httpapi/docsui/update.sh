#!/usr/bin/env bash
# Replaces the vendored swagger-ui-dist with another release from the npm
# registry: bash internal/httpapi/docsui/update.sh 5.36.0
# npm checks the tarball against the registry's integrity hash. Only the
# files the docs page serves, and the licenses that cover them, are kept.
set -euo pipefail
version="${1:?usage: update.sh VERSION (e.g. 5.36.0)}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
license="$(node -p "require('$tmp/package/package.json').license")"
case "$license" in
  Apache-2.0|MIT) ;;
  *) echo "swagger-ui-dist@$version is licensed $license, not Apache-2.0 or MIT: review before vendoring" >&2; exit 1 ;;
esac
dest="$here/swagger-ui-dist"
rm -rf "$dest"
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE package.json; do
  cp "$tmp/package/$f" "$dest/$f"
done
echo "vendored swagger-ui-dist@$version ($license); now update the version in $here/README.md and run:"
echo "  go test ./internal/httpapi/ -run 'TestDocs'"
(cd "$dest" && sha256sum swagger-ui-bundle.js swagger-ui.css)
