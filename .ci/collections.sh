#!/usr/bin/env bash
# Puts the collections this repo needs on $COLL_ROOT without Ansible Galaxy:
#  - community.postgresql (the modules' runtime dependency) and, for Molecule's
#    docker driver, community.docker with its dependency
#    community.library_inventory_filtering_v1 and ansible.posix (the driver's
#    create playbook uses both), extracted from the `ansible` wheel on PyPI (only
#    those collections' files, a few MB instead of the whole 400+ MB package);
#  - classifiedads.consolidation, a relative symlink to this checkout.
# Called by `make collections`; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
COLL_ROOT=${COLL_ROOT:-.ansible/collections}
WHEEL_CACHE=${WHEEL_CACHE:-.cache/wheels}
ANSIBLE_WHEEL_VERSION=${ANSIBLE_WHEEL_VERSION:-14.5.0}

"$VENV/bin/python" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$WHEEL_CACHE" "ansible==$ANSIBLE_WHEEL_VERSION"

"$VENV/bin/python" - "$WHEEL_CACHE/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl" "$COLL_ROOT" <<'EOF'
import json
import shutil
import sys
import zipfile
from pathlib import Path

wheel, coll_root = sys.argv[1], Path(sys.argv[2])
collections = ["community.postgresql", "community.docker", "community.library_inventory_filtering_v1",
               "ansible.posix"]
with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
    for collection in collections:
        prefix = "ansible_collections/{}/{}/".format(*collection.split("."))
        target = coll_root / prefix
        # Start from empty so files dropped by a newer release do not linger.
        shutil.rmtree(target, ignore_errors=True)
        members = [name for name in names if name.startswith(prefix)]
        if not members:
            sys.exit(f"{wheel} holds no {prefix}")
        archive.extractall(coll_root, members)
        version = json.loads((target / "MANIFEST.json").read_text())["collection_info"]["version"]
        print(f"{collection} {version} -> {target}")
EOF

# A relative link survives moving the clone.
namespace_dir="$COLL_ROOT/ansible_collections/classifiedads"
mkdir -p "$namespace_dir"
ln -sfn "$(realpath --relative-to="$namespace_dir" .)" "$namespace_dir/consolidation"
test -f "$namespace_dir/consolidation/galaxy.yml"
