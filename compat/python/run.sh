#!/usr/bin/env bash
# The Python compatibility suite: our orchestrator (the showcase binary, with
# its blueprints and no Go workers) driven by workers written with the
# upstream Python SDK, once per pinned SDK version.
#
#   compat/python/run.sh            # every requirements-*.txt (b17, b20)
#   compat/python/run.sh b20        # one version
#   compat/python/run.sh b17 -k cancel   # arguments after the versions go to pytest
#
# Each version gets a virtual environment made from requirements-<v>.txt,
# cached in $AVTO_VENV_CACHE/venv-<v> (default ~/.cache/avtomatika) and made
# again when the file or the Python changes. The orchestrator is built from
# this tree unless AVTO_COMPAT_ORCHESTRATOR names a built showcase. The S3
# cases use AVTO_TEST_S3_ENDPOINT (MinIO, credentials AVTO_TEST_S3_ACCESS_KEY
# and AVTO_TEST_S3_SECRET_KEY, minioadmin by default); without it they are
# skipped, loudly, unless AVTO_REQUIRE_SERVICES=1 makes that a failure.
# Exits non-zero when a case of any version fails, and when a version
# collected no test at all (pytest's exit 5).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
cache="${AVTO_VENV_CACHE:-$HOME/.cache/avtomatika}"

versions=()
while [ $# -gt 0 ] && [ -f "$here/requirements-$1.txt" ]; do
  versions+=("$1")
  shift
done
if [ ${#versions[@]} -eq 0 ]; then
  for f in "$here"/requirements-*.txt; do
    v="${f##*/requirements-}"
    versions+=("${v%.txt}")
  done
fi

# venv makes (or reuses) the virtual environment of a version.
venv() {
  local v="$1" req="$here/requirements-$1.txt" dir="$cache/venv-$1" stamp
  stamp="$({ cat "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements-sha256" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  echo "== making $dir from ${req#"$root"/} ($("$py" --version))"
  rm -rf "$dir"
  mkdir -p "$cache"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
  "$dir/bin/python" -m pip check
  echo "$stamp" >"$dir/.requirements-sha256"
}

if [ -z "${AVTO_COMPAT_ORCHESTRATOR:-}" ]; then
  bin="$(mktemp -d)"
  trap 'rm -rf "$bin"' EXIT
  echo "== building the orchestrator (go build ./examples/showcase)"
  (cd "$root" && go build -o "$bin/showcase" ./examples/showcase)
  export AVTO_COMPAT_ORCHESTRATOR="$bin/showcase"
fi

failed=()
summary=()
for v in "${versions[@]}"; do
  venv "$v"
  echo "== Python compatibility suite, SDK $v"
  start=$SECONDS
  rc=0
  (cd "$here" && timeout 900 "$cache/venv-$v/bin/python" -m pytest -q "$@") || rc=$?
  case $rc in
    0) summary+=("$v: passed ($((SECONDS - start)) s)") ;;
    5) summary+=("$v: FAILED: no test was collected") failed+=("$v") ;;
    *) summary+=("$v: FAILED (pytest exit $rc, $((SECONDS - start)) s)") failed+=("$v") ;;
  esac
done
echo "== Python compatibility suite"
printf '   %s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
