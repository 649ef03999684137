"""ansible-playbook killed mid-copy: no module keeps working, no table is half copied, the rerun resumes.

Also the second of two runs at once: it is refused at preflight, naming the first.
Ansible's worker puts itself in a session of its own and the module runs below it, so
killing ansible-playbook's process group does not reach them: the module has to notice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, consolidation_vars, drop_database, run_sql
from constants import MODULE_SCHEMAS
from devkit import legacy
from psycopg2 import sql

PREFIX = "Killed"
TARGET_DB = "Killed_Consolidated"
RUN_ID = "killed-run"
# About 290 MB of legacy data: the copy takes several seconds even on a fast machine.
SCALE = 2


@pytest.fixture(scope="module")
def big_legacy(source_cluster, target_cluster):
    legacy.create(source_cluster, SCALE, prefix=PREFIX, out=lambda line: None)
    yield
    drop_database(target_cluster, TARGET_DB)
    legacy.drop(source_cluster, prefix=PREFIX)


def start_playbook(variables, workdir, name, run_id):
    """consolidate.yml in a session of its own (so that its process group can be killed), output to a file."""
    vars_file = workdir / f"{name}.json"
    vars_file.write_text(json.dumps(dict(variables, consolidation_run_id=run_id)))
    vars_file.chmod(0o600)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".ansible", "collections"),
               ANSIBLE_REMOTE_TMP=str(workdir / f"{name}-tmp"))
    output = open(workdir / f"{name}.out", "w")  # noqa: SIM115 - closed by finish()
    process = subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-e", f"@{vars_file}",
                                "classifiedads.consolidation.consolidate"], stdout=output, stderr=subprocess.STDOUT,
                               cwd=REPO, env=env, start_new_session=True)
    process.output_file = output
    process.output_path = workdir / f"{name}.out"
    process.marker = str(workdir / name)  # in the argv of its ansible-playbook processes, shell and module
    return process


def finish(process, timeout=600):
    rc = process.wait(timeout=timeout)
    process.output_file.close()
    return rc, process.output_path.read_text()


def processes_of(marker):
    """(pid, argv) of every live process whose command line names ``marker`` (its vars file or its module tmp)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().decode("utf-8", "replace").split("\0")
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(marker in arg for arg in argv):
            found.append((int(entry), argv))
    return found


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def copy_module(process):
    return [argv for _pid, argv in processes_of(process.marker) if any("AnsiballZ_data_copy" in a for a in argv)]


def copied_tables(target_cluster):
    rows = run_sql(target_cluster, TARGET_DB, "SELECT to_regclass('_consolidation.copied_tables') IS NOT NULL")
    if not rows[0][0]:
        return set()
    return set(run_sql(target_cluster, TARGET_DB,
                       "SELECT target_schema, target_table FROM _consolidation.copied_tables WHERE run_id = %s",
                       (RUN_ID,)))


def count(info, database, schema, table):
    return run_sql(info, database, sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                                                sql.Identifier(table)))[0][0]


def test_killed_playbook_stops_its_module_and_the_rerun_resumes(
        big_legacy, source_cluster, target_cluster, tmp_path):
    variables = consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, PREFIX)
    run_dir = tmp_path / "runs" / RUN_ID

    first = start_playbook(variables, tmp_path, "first", RUN_ID)
    try:
        wait_for(lambda: copy_module(first), 600, "the data_copy module to start")
        # Let it copy a little: at least one table done, the copy still going.
        wait_for(lambda: copied_tables(target_cluster) or first.poll() is not None, 120, "a first copied table")
        os.killpg(first.pid, signal.SIGKILL)
        killed_at = time.time()
        rc, output = finish(first)
        assert rc == -signal.SIGKILL, output[-3000:]
        # Within a few seconds nothing of that run keeps working: module, its shell, ansible's worker.
        wait_for(lambda: not processes_of(first.marker), 15, "every process of the killed run to end")
        assert time.time() - killed_at < 15
    finally:
        for pid, _argv in processes_of(first.marker):
            os.kill(pid, signal.SIGKILL)

    done = copied_tables(target_cluster)
    mapped = {(module["schema"], table) for module in variables["consolidation_modules"]
              for table in module.get("tables") or {}}
    assert done, "the kill came before any table was copied"
    sources = {schema: f"{PREFIX}_{name}" for name, schema in MODULE_SCHEMAS}
    tables = run_sql(target_cluster, TARGET_DB,
                     "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                     "AND table_schema = ANY(%s)", ([schema for _name, schema in MODULE_SCHEMAS],))
    assert len(done) < len(tables), "the copy had finished before the kill: nothing was cut off"
    for schema, table in tables:
        in_target = count(target_cluster, TARGET_DB, schema, table)
        if (schema, table) in done:
            assert in_target == count(source_cluster, sources[schema], "public", table), (schema, table)
        elif (schema, table) not in mapped:  # seeded by the migrator where the mapping truncates; else empty
            assert in_target == 0, f"{schema}.{table} holds {in_target} rows but is not recorded as copied"
    # The run directory says why the module stopped.
    log = (run_dir / "data_copy.log").read_text()
    assert (f"stopped: the ansible-playbook (or other process) that started this module, pid {first.pid}, "
            "is gone") in log, log[-2000:]
    records = list(run_dir.glob("failure-data_copy-*.json"))
    assert len(records) == 1 and records[0].stat().st_mode & 0o777 == 0o600
    assert "is gone" in json.loads(records[0].read_text())["msg"]
    # The killed run keeps its lease: its ansible-playbook is named, and it is gone.
    assert run_sql(target_cluster, TARGET_DB, "SELECT run_id, pid FROM _consolidation.lease") == [(RUN_ID, first.pid)]

    # The rerun (same run id, same host) takes the lease over; a second run started meanwhile is refused.
    rerun = start_playbook(variables, tmp_path, "rerun", RUN_ID)
    try:
        wait_for(lambda: run_sql(target_cluster, TARGET_DB, "SELECT pid FROM _consolidation.lease") == [(rerun.pid,)]
                 or rerun.poll() is not None, 300, "the rerun to take the lease over")
        second = start_playbook(variables, tmp_path, "second", "another-run")
        rc, output = finish(second)
        assert rc != 0
        assert f"run {RUN_ID} on " in output and f"pid {rerun.pid}" in output, output[-4000:]
        assert "one run at a time per target database" in output
        assert not (tmp_path / "runs" / "another-run").exists()  # refused before its run directory was opened
    finally:
        rc, output = finish(rerun)
    assert rc == 0, output[-6000:]
    assert "took over the lease" in output or "taken_over" in output, output[-6000:]
    # The completed run released its lease with its state schema.
    assert run_sql(target_cluster, TARGET_DB, "SELECT to_regnamespace('_consolidation') IS NULL") == [(True,)]
    report = json.loads((run_dir / "verification.json").read_text())
    assert report["summary"]["passed"], report["summary"]
