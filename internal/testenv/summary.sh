#!/bin/sh
# Prints the summary of the service decisions that test processes wrote to
# the folder given as $1 (AVTO_TEST_REPORT_DIR, see testenv.go): one line per
# service and outcome, with the package folders that met it. make test runs
# it after go test.
dir=${1:?usage: summary.sh REPORT_DIR}
echo
echo "== Services of the suites (internal/testenv; AVTO_TEST_* variables choose them)"
if ! ls "$dir"/testenv-*.txt >/dev/null 2>&1; then
  echo "no suite that ran asked for a service"
  exit 0
fi
cat "$dir"/testenv-*.txt | sort -u | awk -F '\t' '
  {
    key = $1 FS $2 FS $3
    if (!(key in pkgs)) { order[n++] = key; pkgs[key] = $4 }
    else if (index(", " pkgs[key] ", ", ", " $4 ", ") == 0) pkgs[key] = pkgs[key] ", " $4
  }
  END {
    for (i = 0; i < n; i++) {
      split(order[i], f, FS)
      printf "%-8s %s: %s [%s]\n", f[1], f[2], f[3], pkgs[order[i]]
    }
  }'
