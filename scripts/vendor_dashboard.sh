#!/usr/bin/env bash
# Refresh the dashboard's vendored libraries (Preact, htm, the graphql-ws client), served by
# the API from the package under /ui/static/vendor/ (no CDN, no build step: the browser
# loads these ES modules as they are). Each file is taken unchanged from its npm package at
# the pinned version, with the package's license, and VERSIONS.md and SHA256SUMS are
# rewritten (tests/graph/test_dashboard.py checks the files against SHA256SUMS). Needs npm
# and the npm registry.
#
# To upgrade: change a version below, run `bash scripts/vendor_dashboard.sh`, update the
# import map in graph/server/dashboard.py (IMPORTS), run tests/graph/test_dashboard*.py,
# and remove the old directory.
set -euo pipefail

PREACT=11.2.0
HTM=3.1.1
GRAPHQL_WS=6.4.2

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/graph/server/static/dashboard/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unpack NAME@VERSION into $work/DIR and append its row to the VERSIONS table
rows=""
unpack() {
    local spec=$1 dir=$2 integrity
    integrity=$(cd "$work" && npm pack --json --silent "$spec" \
        | node -e 'const [p]=JSON.parse(require("fs").readFileSync(0));
                   require("fs").renameSync(p.filename, process.argv[1]+".tgz");
                   console.log(p.integrity)' "$dir")
    mkdir -p "$work/$dir" && tar xzf "$work/$dir.tgz" -C "$work/$dir" --strip-components=1
    rows+="| \`$spec\` | \`$integrity\` |"$'\n'
}

unpack "preact@$PREACT" preact
unpack "htm@$HTM" htm
unpack "graphql-ws@$GRAPHQL_WS" graphql-ws

mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
put() {  # put DIR FILE... : copy from the unpacked package into $dest/DIR
    local into=$1; shift
    mkdir -p "$dest/$into"
    for file in "$@"; do cp "$work/$file" "$dest/$into/"; done
}
put "preact-$PREACT" preact/dist/preact.mjs preact/hooks/dist/hooks.mjs preact/LICENSE
put "htm-$HTM" htm/dist/htm.mjs htm/LICENSE
# the browser build of the client: dist/client.js and the chunk it imports
chunks=$(grep -o "from '\./[^']*'" "$work/graphql-ws/dist/client.js" | sed "s|from '\./||; s|'||" \
    | sort -u | sed 's|^|graphql-ws/dist/|')
# shellcheck disable=SC2086
put "graphql-ws-$GRAPHQL_WS" graphql-ws/dist/client.js $chunks
cp "$work/graphql-ws/LICENSE.md" "$dest/graphql-ws-$GRAPHQL_WS/LICENSE"

cat > "$dest/VERSIONS.md" <<MD
# Vendored dashboard libraries

Served by the API under \`/ui/static/vendor/\` (graph/server/dashboard.py), so that the
dashboard needs nothing from another origin and no build step: the browser loads these ES
modules as they are, through the import map in the page. Each file is byte-for-byte the one
in its npm package (integrity as the registry gives it below; SHA256SUMS lists the files),
each directory holds its package's license. The source maps these files name are not
shipped.

Refresh or upgrade: \`bash scripts/vendor_dashboard.sh\` (versions at its top).

| package | npm integrity | license |
| --- | --- | --- |
$(printf '%s' "$rows" | sed 's/preact@.*|$/& MIT |/; s/htm@.*|$/& Apache-2.0 |/; s/graphql-ws@.*|$/& MIT |/')

Files taken: preact/dist/preact.mjs and preact/hooks/dist/hooks.mjs (which imports
\`preact\`, resolved by the import map), htm/dist/htm.mjs, graphql-ws/dist/client.js (the
package's \`browser\` export) and the chunk it imports.
MD

(cd "$dest" && find . -mindepth 2 -type f ! -name LICENSE | sort | sed 's|^\./||' \
    | xargs sha256sum > SHA256SUMS)
echo "vendored into $dest"
