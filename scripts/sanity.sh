#!/usr/bin/env bash
# Runs `ansible-test sanity` on a copy of the checkout laid out as ansible_collections/saferelease/core,
# which is where ansible-test insists a collection lives.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}

# ansible-test builds one virtualenv per sanity test under ~/.ansible/test/venv and shares it between
# runs. Two runs building the same one at once break each other (seen here: "No module named
# pip._internal..." in one of two runs started together on an empty ~/.ansible/test), so runs
# take turns.
mkdir -p ~/.ansible/test
exec 9> ~/.ansible/test/saferelease-sanity.lock
if ! flock -n 9; then
    echo "sanity: another ansible-test sanity run is using ~/.ansible/test; waiting for it to finish"
    flock 9
fi

# ansible-test pins the pip it bootstraps; read that pin from its own source.
pip_version=$(grep -oP "pip='\\K[0-9.]+" "$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py")
get_pip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -f "$get_pip" ]; then
    mkdir -p "$(dirname "$get_pip")"
    cp "$repo/scripts/get_pip_standin.py" "$get_pip"
fi

work=$(mktemp -d /tmp/saferelease-sanity-XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/saferelease/core
mkdir -p "$dest"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$dest"

cd "$dest"
export PATH="$venv/bin:$PATH"
ansible-test sanity --venv --python 3.11 --color no "$@"
