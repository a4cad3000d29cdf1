#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run them all:
# lint (ruff), types (mypy --strict), layer order (import-linter), pytest.
# Run as root: most tests make real namespaces, and the rootless ones drop to
# uid 65534 with setpriv. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: build tools for the C parts, the tools the tests cross-check
# against (lsns/unshare, ps, pstree), and the engines (podman, runc) with a busybox
# to build their root file systems from.
PKGS=(python3 python3-venv python3-dev gcc libc6-dev util-linux procps psmisc podman runc
      busybox-static bubblewrap tini hyperfine)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests bench
.venv/bin/mypy --strict src
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
