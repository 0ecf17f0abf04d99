#!/usr/bin/env bash
# Installs the real Prisma CLI the compatibility tests (tests/compat) and bench/prisma_state.py run:
# prisma@6.19.3 with @prisma/adapter-better-sqlite3@6.19.3, pinned by tests/compat/prisma-cli/package-lock.json.
#
# Only the npm registry is needed. Package install scripts are skipped (@prisma/engines' postinstall
# would try to download native engines from binaries.prisma.sh); better-sqlite3 is then built from
# source with node-gyp against the local Node.js headers. The tests use `engine: "js"` in
# prisma.config.ts, where `migrate deploy`, `migrate status` and `migrate resolve --applied` run on
# Prisma's WebAssembly schema engine and never ask for a native one.
#
# Idempotent: does nothing while node_modules/.installed is newer than package.json and the lock.
# Never reads stdin. Prints one line unless something fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$repo/tests/compat/prisma-cli
modules=$dir/node_modules
stamp=$modules/.installed
prisma=$modules/.bin/prisma
addon=$modules/better-sqlite3/build/Release/better_sqlite3.node

fail() {
    echo "prisma-cli-setup: $*" >&2
    exit 1
}

# Nothing below may phone home or fetch engines.
export CHECKPOINT_DISABLE=1
export PRISMA_HIDE_UPDATE_MESSAGE=1
export PRISMA_SKIP_POSTINSTALL_GENERATE=1
export PRISMA_GENERATE_SKIP_AUTOINSTALL=1
export PRISMA_DISABLE_WARNINGS=1
export PRISMA_ENGINES_MIRROR=http://127.0.0.1:9/no-engine-downloads
export NO_UPDATE_NOTIFIER=1
export npm_config_update_notifier=false
export npm_config_fund=false
export npm_config_audit=false

command -v node >/dev/null 2>&1 || fail "node is not installed. Install Node.js 18.18 or newer (Debian: apt-get install -y nodejs npm, or run 'make system-deps' as root)."
command -v npm >/dev/null 2>&1 || fail "npm is not installed. Install it (Debian: apt-get install -y npm, or run 'make system-deps' as root), then run 'make prisma-cli' again."
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 18) ? 0 : 1)' \
    || fail "Node.js $(node --version) is too old: prisma 6.19.3 needs 18.18 or newer."
[ -f "$dir/package-lock.json" ] || fail "$dir/package-lock.json is missing; it pins the Prisma CLI (restore it from git)."

up_to_date() {
    [ -f "$stamp" ] && [ -x "$prisma" ] && [ -f "$addon" ] \
        && [ "$stamp" -nt "$dir/package-lock.json" ] && [ "$stamp" -nt "$dir/package.json" ]
}

if up_to_date; then
    echo "prisma-cli: up to date ($(node -p 'require(process.argv[1]).version' "$modules/prisma/package.json" 2>/dev/null || echo '?') in tests/compat/prisma-cli)"
    exit 0
fi

# node-gyp needs the Node.js headers; use the system ones instead of downloading them.
if [ -z "$(npm config get nodedir 2>/dev/null | sed '/^undefined$/d;/^null$/d')" ] && [ -f /usr/include/node/node.h ]; then
    export npm_config_nodedir=/usr
fi

log=$(mktemp /tmp/prisma-cli-setup-XXXXXX.log)
trap 'rm -f "$log"' EXIT
run() {  # run CMD...: quiet unless it fails
    if ! "$@" </dev/null >>"$log" 2>&1; then
        tail -n 40 "$log" >&2
        fail "'$*' failed (output above)."
    fi
}

echo "prisma-cli: installing prisma 6.19.3 + @prisma/adapter-better-sqlite3 into tests/compat/prisma-cli (building better-sqlite3, ~1-2 min)"
rm -f "$stamp"
run npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error --ignore-scripts
# better-sqlite3's install script: prebuild-install (GitHub, unreachable) is skipped by --build-from-source.
run npm rebuild --prefix "$dir" better-sqlite3 --build-from-source --loglevel=error
[ -f "$addon" ] || fail "better-sqlite3 did not build ($addon missing); is a C++ toolchain (g++, make, python3) installed?"
[ -x "$prisma" ] || fail "$prisma is missing after npm ci."

# Smoke test: the engine-free path works on a throwaway SQLite database.
work=$(mktemp -d /tmp/prisma-cli-smoke-XXXXXX)
trap 'rm -f "$log"; rm -rf "$work"' EXIT
mkdir -p "$work/prisma/migrations/20250101000000_init"
ln -s "$modules" "$work/node_modules"
cp "$dir/prisma.config.ts" "$work/prisma.config.ts"
cp "$dir/schema.prisma" "$work/prisma/schema.prisma"
printf 'provider = "sqlite"\n' >"$work/prisma/migrations/migration_lock.toml"
printf 'CREATE TABLE "Smoke" ("id" INTEGER NOT NULL PRIMARY KEY);\n' >"$work/prisma/migrations/20250101000000_init/migration.sql"
(
    cd "$work"
    export DATABASE_URL="file:$work/smoke.db" XDG_CACHE_HOME="$work/cache" XDG_CONFIG_HOME="$work/config"
    run "$prisma" migrate deploy
    run "$prisma" migrate status
)
grep -q 'Database schema is up to date!' "$log" \
    || { tail -n 40 "$log" >&2; fail "the installed Prisma CLI did not pass its smoke test (migrate deploy + status on SQLite)."; }

touch "$stamp"
echo "prisma-cli: ready ($prisma)"
