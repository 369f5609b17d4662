#!/usr/bin/env bash
# Set up what the test suite needs on this machine, idempotently (`make test` runs it
# first; `.ci/run` reuses it):
#   * PostgreSQL on 127.0.0.1:5432 with trust auth (the store and service tests);
#   * Debian's headless `chromium` (the report page's browser tests);
#   * no stale Ray session file (it breaks later `ray.init()` calls).
# Needs root (or passwordless sudo) only for what is missing; prints what it did.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "test-setup: need root to run: $*" >&2; return 1; fi
}

# --- PostgreSQL ---------------------------------------------------------------------
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "test-setup: PostgreSQL is up on 127.0.0.1:5432"
else
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "test-setup: installing PostgreSQL (Debian's package)"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
    fi
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    echo "test-setup: starting PostgreSQL $version (cluster main)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do
        pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break
        sleep 1
    done
    if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
        echo "test-setup: PostgreSQL did not come up on 127.0.0.1:5432" >&2
        exit 1
    fi
fi

# --- Chromium -----------------------------------------------------------------------
if command -v chromium >/dev/null 2>&1; then
    echo "test-setup: chromium is installed"
else
    echo "test-setup: installing chromium (Debian's package)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
    command -v chromium >/dev/null 2>&1 || { echo "test-setup: chromium still missing" >&2; exit 1; }
fi

# --- Ray --------------------------------------------------------------------------
if [ -e /tmp/ray/ray_current_cluster ]; then
    echo "test-setup: removing the stale /tmp/ray/ray_current_cluster"
    rm -f /tmp/ray/ray_current_cluster
fi
