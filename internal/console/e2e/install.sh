#!/usr/bin/env bash
# Installs playwright-core (the library only: it downloads no browser; the
# tests drive Debian's Chromium) into a cached folder, once per version,
# and prints the folder. The console's browser tests (TestBrowser) read it
# from AVTO_TEST_PLAYWRIGHT.
set -euo pipefail
version=1.65.2
dir="${AVTO_PLAYWRIGHT_CACHE:-$HOME/.cache/avtomatika/playwright-$version}"
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$dir"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --silent "playwright-core@$version" >&2
fi
echo "$dir"
