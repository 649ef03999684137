"""The modules and module_utils run on the Python that tests/config.yml promises (``modules: python_requires``).

They run on the managed node, whose Python can be far older than the controller's: the floor's own
interpreter compiles every file, and imports every one with ansible-core's module_utils and nothing else
installed (psycopg2 and PyYAML are optional imports there), which is where newer library calls fail too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import ansible
import pytest
import yaml
from ansible.module_utils import basic

REPO = Path(__file__).resolve().parents[3]
FILES = sorted((REPO / "plugins" / "module_utils").glob("*.py")) + sorted((REPO / "plugins" / "modules").glob("*.py"))
ANSIBLE_CORE_TARGET_FLOOR = basic._PY_MIN

# Run by the floor interpreter: each file's problem (compile or import), or nothing.
PROBE = r"""
import importlib, json, sys, traceback
problems = {}
for path, name in json.loads(sys.argv[1]):
    try:
        with open(path, encoding="utf-8") as handle:
            compile(handle.read(), path, "exec")
        if sys.argv[2] == "import":
            importlib.import_module(name)
    except BaseException:
        problems[name] = traceback.format_exc(limit=-1).strip().splitlines()[-3:]
print(json.dumps(problems))
"""


def python_floor() -> tuple[int, int]:
    requires = yaml.safe_load((REPO / "tests" / "config.yml").read_text())["modules"]["python_requires"]
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires)
    assert found, f"tests/config.yml: modules.python_requires {requires!r} is not of the form '>=X.Y'"
    return int(found.group(1)), int(found.group(2))


def floor_interpreter(version: tuple[int, int]) -> str:
    """``CLASSIFIEDADS_MODULE_PYTHON``, else pyenv's newest X.Y (its ``pythonX.Y`` shim fails unless selected)."""
    if os.environ.get("CLASSIFIEDADS_MODULE_PYTHON"):
        return os.environ["CLASSIFIEDADS_MODULE_PYTHON"]
    dotted = ".".join(map(str, version))
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(root.glob(f"versions/{dotted}.*/bin/python{dotted}"),
                        key=lambda path: [int(part) for part in path.parts[-3].split(".")])
    if not candidates:
        pytest.fail(f"no python{dotted} to check the modules with: `pyenv install {dotted}`, or set "
                    f"CLASSIFIEDADS_MODULE_PYTHON to a Python {dotted} interpreter")
    return str(candidates[-1])


def probe(mode: str, tmp_path: Path) -> dict:
    """Compile (and with ``mode`` "import", import) every file with the floor interpreter."""
    # Only ansible-core's package and this collection on the path: no site-packages of the controller's Python.
    (tmp_path / "ansible_collections" / "classifiedads").mkdir(parents=True)
    (tmp_path / "ansible_collections" / "classifiedads" / "consolidation").symlink_to(REPO)
    (tmp_path / "ansible").symlink_to(Path(ansible.__file__).parent)
    files = [(str(path), "ansible_collections.classifiedads.consolidation."
              + ".".join(path.relative_to(REPO).with_suffix("").parts)) for path in FILES]
    done = subprocess.run([floor_interpreter(python_floor()), "-s", "-c", PROBE, json.dumps(files), mode],
                          capture_output=True, text=True, check=False, cwd=tmp_path,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_module_and_module_util_compiles_on_the_python_floor(tmp_path):
    assert FILES and probe("compile", tmp_path) == {}


@pytest.mark.skipif(ANSIBLE_CORE_TARGET_FLOOR > python_floor(),
                    reason="this ansible-core's module_utils need Python {}.{} on the target; the import check runs "
                           "with the oldest ansible-core requires_ansible names (make core-floor)"
                           .format(*ANSIBLE_CORE_TARGET_FLOOR))
def test_every_module_and_module_util_imports_on_the_python_floor(tmp_path):
    assert probe("import", tmp_path) == {}
