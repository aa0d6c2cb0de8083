#!/usr/bin/env bash
# Refresh the GraphiQL assets that the API serves from the package (no CDN: GraphiQL works
# offline). Takes each file unchanged from its npm package at the pinned version, with the
# package's license, and rewrites VERSIONS.md and SHA256SUMS (tests/graph/test_graphiql.py
# checks the files against SHA256SUMS). Needs npm and the npm registry.
#
# To upgrade: change a version below, run `bash scripts/vendor_graphiql.sh`, update the
# directory names in graph/server/graphiql.py, run tests/graph/test_graphiql*.py, and
# remove the old directory.
set -euo pipefail

REACT=18.2.0
GRAPHIQL=3.8.3
EXPLORER=1.0.2
GRAPHIQL_EXPLORER=0.9.0  # bundled inside @graphiql/plugin-explorer's UMD build; license only

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/graph/server/static/graphiql
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

unpack "react@$REACT" react
unpack "react-dom@$REACT" react-dom
unpack "graphiql@$GRAPHIQL" graphiql
unpack "@graphiql/plugin-explorer@$EXPLORER" plugin-explorer
unpack "graphiql-explorer@$GRAPHIQL_EXPLORER" graphiql-explorer

find "$dest" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
put() {  # put DIR FILE... : copy from the unpacked package into $dest/DIR
    local into=$1; shift
    mkdir -p "$dest/$into"
    for file in "$@"; do cp "$work/$file" "$dest/$into/"; done
}
put "react-$REACT" react/umd/react.production.min.js react/LICENSE
put "react-dom-$REACT" react-dom/umd/react-dom.production.min.js react-dom/LICENSE
put "graphiql-$GRAPHIQL" graphiql/graphiql.min.js graphiql/graphiql.min.css graphiql/LICENSE
put "plugin-explorer-$EXPLORER" plugin-explorer/dist/index.umd.js plugin-explorer/dist/style.css
# @graphiql/plugin-explorer ships no LICENSE file: its package.json says MIT and it lives in
# the graphql/graphiql repository, whose license graphiql ships; its UMD build bundles
# graphiql-explorer (MIT), whose license is appended.
{
    echo "@graphiql/plugin-explorer $EXPLORER: MIT (package.json), repository graphql/graphiql:"
    echo
    cat "$work/graphiql/LICENSE"
    echo
    echo "Bundled in index.umd.js: graphiql-explorer $GRAPHIQL_EXPLORER:"
    echo
    cat "$work/graphiql-explorer/LICENSE"
} > "$dest/plugin-explorer-$EXPLORER/LICENSE"

cat > "$dest/VERSIONS.md" <<MD
# Vendored GraphiQL assets

Served by the API under \`/graphql/static/\` (graph/server/graphiql.py), so that GraphiQL
needs nothing from another origin. Each file is byte-for-byte the one in its npm package
(integrity as the registry gives it below; SHA256SUMS lists the files), each directory
holds its package's license. The source maps these files name are not shipped.
\`jobgraph-graphiql.js\` is ours.

Refresh or upgrade: \`bash scripts/vendor_graphiql.sh\` (versions at its top).

| package | npm integrity |
| --- | --- |
$rows
Files taken: react/umd/react.production.min.js, react-dom/umd/react-dom.production.min.js,
graphiql/graphiql.min.js and graphiql.min.css, @graphiql/plugin-explorer/dist/index.umd.js
and style.css. graphiql-explorer is listed for its license only (bundled in index.umd.js).
MD

(cd "$dest" && find . -mindepth 2 -type f ! -name LICENSE | sort | sed 's|^\./||' \
    | xargs sha256sum > SHA256SUMS)
echo "vendored into $dest"
