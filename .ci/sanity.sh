#!/usr/bin/env bash
# `ansible-test sanity` offline (PyPI only), on a copy of the working tree.
#
# ansible-test insists on running from .../ansible_collections/<ns>/<name> and
# resolves symlinks in the working directory, so the .ansible/collections link
# farm will not do: the files git tracks or would track (untracked, not ignored)
# are copied under $BUILD_DIR/sanity/ instead, next to community.postgresql.
# The dev harness (tools/, bench/) is left out: it is not part of the collection
# (build_ignore), ruff checks it, and Ansible's pylint rules are for plugin code.
# No test is skipped: ansible-test installs each test's requirements from PyPI,
# which is reachable; pslint finds no PowerShell; shellcheck needs the Debian
# package (.ci/run installs it) and skips itself with a warning without it.
# Only Python 3.12 runs (compile/import included): the other pyenv interpreters
# are shims that fail unless selected.
# Called by `make sanity`; extra arguments go to ansible-test.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
COLL_ROOT=${COLL_ROOT:-.ansible/collections}
BUILD_DIR=${BUILD_DIR:-build}
venv_bin=$(realpath "$VENV")/bin
community_postgresql=$(realpath "$COLL_ROOT")/ansible_collections/community/postgresql
sanity_root="$BUILD_DIR/sanity/ansible_collections"
copy="$sanity_root/classifiedads/consolidation"

# ansible-test bootstraps pip in its venvs with a script it downloads from a host
# this network does not reach, unless a copy sits in its cache: put the stand-in
# there under the name this ansible-test looks for (pip version it pins).
pip_version=$("$venv_bin/python" - <<'PY'
import types

from ansible_test._internal.python_requirements import get_venv_packages

print(get_venv_packages(types.SimpleNamespace(version="3.12"))["pip"])
PY
)
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ ! -e $get_pip ]] || grep -q "Offline stand-in" "$get_pip"; then
    install -D -m 0644 .ci/get_pip_standin.py "$get_pip"
fi

rm -rf "$BUILD_DIR/sanity"
mkdir -p "$copy" "$sanity_root/community"
git ls-files -z --cached --others --exclude-standard -- . ':(exclude)tools' ':(exclude)bench' \
    | tar --create --null --files-from=- --ignore-failed-read \
    | tar --extract --directory="$copy"
ln -s "$community_postgresql" "$sanity_root/community/postgresql"
# ansible-test lists content with git from the nearest .git upwards, and this
# repository ignores build/: a repository of its own makes the copy visible.
git init --quiet "$copy"

cd "$copy"
export PATH="$venv_bin:$PATH"
exec ansible-test sanity --venv --python 3.12 --color no "$@"
