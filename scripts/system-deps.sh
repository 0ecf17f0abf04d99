#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need, and only those that are missing.
# As root it uses apt-get (services are kept from starting: the tests start their own servers);
# otherwise it stops and names the packages to install.
set -euo pipefail

missing=()
need() {  # need PACKAGE TEST...: the package is missing when the test fails
    local package=$1; shift
    "$@" >/dev/null 2>&1 || missing+=("$package")
}
has_command() { command -v "$1"; }
has_postgres_server() { compgen -G '/usr/lib/postgresql/*/bin/initdb'; }

need mariadb-server has_command mariadbd
need mariadb-server has_command mariadb-install-db
need mariadb-client has_command mariadb-dump
need postgresql has_postgres_server
need postgresql-client has_command pg_dump
need nginx has_command nginx
need sqlite3 has_command sqlite3
need zstd has_command zstd
need nodejs has_command node
need npm has_command npm
need procps has_command pgrep
need shellcheck has_command shellcheck
need openssl has_command openssl
# the test fleet (tests/harness/fleet.py): a Debian root file system per host, reached over SSH
need debootstrap has_command debootstrap
need openssh-client has_command ssh
need util-linux has_command nsenter

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if [ ${#missing[@]} -eq 0 ]; then
    echo "system-deps: all present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "system-deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
    # Debian starts a freshly installed server at once; the suite must never run next to one.
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
