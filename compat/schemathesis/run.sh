#!/usr/bin/env bash
# The schema-driven API fuzzer: Schemathesis (pinned in requirements.txt)
# generates requests from the orchestrator's own OpenAPI document
# (/_public/openapi.json) and checks the answers against it, for a bounded
# time, on a freshly started orchestrator: the showcase's, on the in-memory
# store, SQLite history and a local blob folder, with the showcase's clients
# and workers tokens and an admin token, so the authenticated routes are
# exercised too (schemathesis.toml).
#
#   compat/schemathesis/run.sh              # 120 s
#   AVTO_FUZZ_API_SECONDS=30 compat/schemathesis/run.sh
#   compat/schemathesis/run.sh --seed 42    # arguments go to schemathesis run
#
# The virtual environment is cached in $AVTO_VENV_CACHE/venv-schemathesis
# (default ~/.cache/avtomatika) and made again when requirements.txt or the
# Python changes. Fails when Schemathesis finds anything (a 5xx, an
# undocumented status, a body or header that does not match the document,
# ...) and when the orchestrator logged an ERROR meanwhile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
cache="${AVTO_VENV_CACHE:-$HOME/.cache/avtomatika}"
seconds="${AVTO_FUZZ_API_SECONDS:-120}"
venv="$cache/venv-schemathesis"

stamp="$({ cat "$here/requirements.txt"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if ! [ -x "$venv/bin/schemathesis" ] || [ "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$stamp" ]; then
  echo "== making $venv from compat/schemathesis/requirements.txt ($("$py" --version))"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$here/requirements.txt"
  "$venv/bin/python" -m pip check
  echo "$stamp" >"$venv/.requirements-sha256"
fi

work="$(mktemp -d)"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building the orchestrator (go build ./examples/showcase)"
(cd "$root" && go build -o "$work/showcase" ./examples/showcase)

# A free port below the ephemeral range.
port="$("$py" -c '
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32000)
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
        print(p); break
    except OSError:
        pass
')"
base="http://127.0.0.1:$port"

# Long polls answer within a second (the fuzzer waits for each answer), and
# the rate limit is off so that the run reaches the handlers rather than
# 429 (documented, but it tests nothing else). Only what the orchestrator
# reads: REDIS_URL and the rest stay unset (the in-memory store).
env -i PATH="$PATH" HOME="$HOME" \
  API_PORT="$port" ADMIN_TOKEN=schemathesis-admin-token \
  HISTORY_DATABASE_URI="sqlite:$work/history.db" BLOB_DIR="$work/blobs" \
  WORKER_POLL_TIMEOUT_SECONDS=1 RATE_LIMITING_ENABLED=false \
  LOG_LEVEL=WARN LOG_FORMAT=text \
  "$work/showcase" orchestrator >"$work/orchestrator.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "$base/_public/ready" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/orchestrator.log"; echo "the orchestrator exited"; exit 1; }
  sleep 0.1
done
curl -sf "$base/_public/ready" >/dev/null

echo "== Schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}') against $base/_public/openapi.json for ${seconds} s"
rc=0
# From the work folder, where Schemathesis leaves its cache (.schemathesis).
(cd "$work" && "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/_public/openapi.json" \
  --max-time "$seconds" "$@") || rc=$?

if grep -E 'level=ERROR|panicked' "$work/orchestrator.log" >/dev/null; then
  echo "== the orchestrator logged errors during the run:"
  grep -E 'level=ERROR|panicked' "$work/orchestrator.log" | head -50
  [ $rc -ne 0 ] || rc=1
fi
exit $rc
