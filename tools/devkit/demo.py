"""`make demo`: the whole consolidation on an embedded throwaway PostgreSQL.

Starts (or reuses) the embedded cluster, builds the six legacy ClassifiedAds
databases with generated data (unless they already hold that scale), prints
them with their row counts, then runs ``classifiedads.consolidation.consolidate``
against ``inventories/local``. Rerunning it resumes the same run, which then
changes nothing. The legacy data has the quirks of real installations (claims
whose shadow key is NULL where the application's migration made it NOT NULL);
the demo ends with what the copy found before moving any row and how the
ClassifiedAds defaults resolved it.

    python -m devkit.demo [--scale 0.05] [--cluster demo] [-- <ansible-playbook args, e.g. --check>]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from devkit.pgembed import ClusterError, EmbeddedCluster

REPO = Path(__file__).resolve().parents[2]
DEMO_ROOT = os.environ.get("CLASSIFIEDADS_DEMO_ROOT", "/var/tmp/classifiedads-demo")


def run(argv: list[str], env: dict) -> None:
    print("+ " + " ".join(argv), flush=True)
    subprocess.run(argv, env=env, cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="0.05", help="data volume (1 is about 100 MB; default 0.05)")
    parser.add_argument("--cluster", default="demo", help="embedded cluster name (default: demo)")
    parser.add_argument("playbook_args", nargs="*", help="extra ansible-playbook arguments (after --)")
    args = parser.parse_args(argv)

    try:
        info = EmbeddedCluster(args.cluster).start()
    except ClusterError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(f"Embedded PostgreSQL {info.version} '{info.name}' on {info.host}:{info.port} (data in {info.data_dir})")
    env = dict(os.environ, **info.libpq_env(), CLASSIFIEDADS_DEMO_ROOT=DEMO_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tools"), env.get("PYTHONPATH")]))
    python = sys.executable
    run([python, "-m", "devkit.legacy", "create", "--scale", args.scale, "--cluster", args.cluster], env)
    run([python, "-m", "devkit.legacy", "counts", "--cluster", args.cluster], env)
    playbook = [str(Path(python).parent / "ansible-playbook"), "classifiedads.consolidation.consolidate",
                "-i", str(REPO / "inventories" / "local"), *args.playbook_args]
    try:
        run(playbook, env)
    except subprocess.CalledProcessError as exc:
        print(f"demo: the consolidation playbook failed (exit {exc.returncode}); see its output above",
              file=sys.stderr)
        return exc.returncode
    show_policies(Path(DEMO_ROOT) / "runs")
    return 0


def show_policies(run_root: Path) -> None:
    """The plan-time NULL findings of the latest run, as its copy logged them (one line per column)."""
    try:
        run_dir = run_root / (run_root / "latest").read_text().strip()
        lines = (run_dir / "data_copy.log").read_text().splitlines()
    except OSError:
        return  # check mode, or a run that stopped before the copy: the playbook's output says why
    found = [line for line in lines if line.endswith("(policy)")]
    if found:
        print("\nNULLs where the target forbids them, found before the copy and resolved by the ClassifiedAds "
              "defaults (roles/consolidation/defaults/main.yml):")
        for line in found:
            print("  " + line)
        print(f"The quarantined rows are in {run_dir}/quarantined_rows.json (kept from the state schema the completed "
              f"run dropped); every key is listed in {run_dir}/verification.md.")


if __name__ == "__main__":
    sys.exit(main())
