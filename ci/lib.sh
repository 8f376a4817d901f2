# Shared helpers for the ci/ scripts (sourced, not run).
# shellcheck shell=bash

BRAID_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BRAID_ROOT
BRAID_CACHE=${BRAID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid}
export BRAID_CACHE
mkdir -p "$BRAID_CACHE"

# Debian's own python3 (3.11 on Debian 12) has tomllib; prefer it over whatever
# a version manager put first on PATH.
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# target_field NAME dotted.field: one value from targets/NAME.toml (lists: one per line).
target_field() {
    "$PYTHON" - "$BRAID_ROOT/targets/$1.toml" "$2" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    v = tomllib.load(f)
for k in sys.argv[2].split("."):
    v = v[k]
print("\n".join(map(str, v)) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v)
PY
}

# target_names: every target, one per line.
target_names() {
    local f
    for f in "$BRAID_ROOT"/targets/*.toml; do basename "$f" .toml; done
}

# board_qemu_packages: the qemu-system packages the QEMU boards name, one per line.
board_qemu_packages() {
    "$PYTHON" - "$BRAID_ROOT"/board/*.toml "$BRAID_ROOT"/board/family/*.toml <<'PY'
import sys, tomllib
for f in sys.argv[1:]:
    with open(f, "rb") as fh:
        pkg = tomllib.load(fh).get("qemu", {}).get("package")
    if pkg:
        print(pkg)
PY
}

# step TITLE CMD...: runs CMD, printing the title before and the time after.
step() {
    local title=$1 start end
    shift
    echo "=== $title"
    start=$(date +%s)
    "$@"
    end=$(date +%s)
    echo "--- $title: ok ($((end - start)) s)"
}
