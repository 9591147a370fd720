#!/usr/bin/env bash
# Fetches the assets of the API docs page (`/docs`): the npm package
# swagger-ui-dist, pinned, into target/docs-ui/ (never committed). The host
# serves them from there (or from PASSERELLE_DOCS_ASSETS); without them
# `/docs` answers 503 saying to run this script, so builds never need npm.
# Idempotent: nothing is fetched when the pinned version is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

SWAGGER_UI_DIST_VERSION=5.35.0
DEST=target/docs-ui
PKG=$DEST/node_modules/swagger-ui-dist

installed=$(node -p "require('./$PKG/package.json').version" 2>/dev/null || true)
if [ "$installed" = "$SWAGGER_UI_DIST_VERSION" ] && [ -f "$PKG/swagger-ui-bundle.js" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >/dev/null
    else
        echo "docs-ui: npm is missing (install nodejs and npm)" >&2
        exit 1
    fi
fi
echo "docs-ui: installing swagger-ui-dist $SWAGGER_UI_DIST_VERSION into $DEST" >&2
mkdir -p "$DEST"
# A package.json of its own, so npm never walks up into the repository.
[ -f "$DEST/package.json" ] || echo '{"name":"passerelle-docs-ui","private":true}' >"$DEST/package.json"
npm install --prefix "$DEST" --no-audit --no-fund --loglevel=error --save-exact \
    "swagger-ui-dist@$SWAGGER_UI_DIST_VERSION" >/dev/null
