"""Live progress of a long data_copy in ansible-playbook's output, through the collection's action plugin.

A real playbook copies from ``source_cluster`` into ``target_cluster``; the interval variable is
lowered so that a copy of a few seconds is "long". The lines must come while the task runs (before
its result), carry counts, sizes, a rate and an estimate, and never a row's contents nor a password (the long
copy and verification reach the servers with passwords, through module_defaults as the playbooks do); a copy that
ends within the interval prints none.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import ansible_runner
import pytest
import yaml
from conftest import REPO, drop_database, endpoint, execute, run_sql

pytestmark = pytest.mark.integration

SOURCE_DB = "Progress_Legacy"
TARGET_DB = "Progress_Consolidated"
# A value every row carries: it must never show up in the job output.
ROW_MARKER = "row-content-must-not-be-printed"
TABLES = {"Wide": 900_000, "Small": 10}
LINE = re.compile(r"^\[localhost\] data_copy: (?P<done>\d+)/2 tables, (?P<copied>[\d.]+) MB copied"
                  r"( \([\d.]+ MB in flight\))? of about (?P<total>[\d.]+) MB, [\d.]+ MB/s, "
                  r"(ETA (?P<eta>\d+[hms]\S*|unknown)|(?P<finishing>finishing) .*)$", re.MULTILINE)
TABLE_DDL = 'CREATE TABLE public."{name}" (id bigint PRIMARY KEY, body text NOT NULL)'


@pytest.fixture(scope="module")
def databases(source_cluster, target_cluster):
    for info, name in ((source_cluster, SOURCE_DB), (target_cluster, TARGET_DB)):
        drop_database(info, name)
        execute(info, f'CREATE DATABASE "{name}"')
    for name, rows in TABLES.items():
        run_sql(source_cluster, SOURCE_DB, TABLE_DDL.format(name=name))
        run_sql(source_cluster, SOURCE_DB, f'INSERT INTO public."{name}" SELECT g, %s || repeat(md5(g::text), 4) '
                f"FROM generate_series(1, %s) g", (ROW_MARKER, rows))
        run_sql(target_cluster, TARGET_DB, "CREATE SCHEMA IF NOT EXISTS legacy")
        run_sql(target_cluster, TARGET_DB, TABLE_DDL.format(name=name).replace("public.", "legacy."))
    yield
    drop_database(source_cluster, SOURCE_DB)
    drop_database(target_cluster, TARGET_DB)


def printed_during_task(run, result, task="Copy"):
    """What the job output holds between the task's banner and its ``result`` line (the lines come there)."""
    start = run.stdout.index(f"TASK [{task}]")
    return run.stdout[run.stdout.index("\n", start):run.stdout.index(result, start)].strip()


def password_of(info):
    """The cluster's real password (its pgpass line is host:*:*:user:password)."""
    return Path(info.passfile).read_text().strip().split(":", 4)[4]


def with_passwords(source_cluster, target_cluster):
    """The servers as an operator gives them, with their passwords and no passfile, and the environment to run in.

    The play reaches them through module_defaults, as the collection's playbooks do; no PG* variable (no
    PGPASSFILE) in the environment, so the module and the progress probe can log in only with the passwords
    that travel through Ansible and the action plugin.
    """
    sides = {}
    for side, info in (("source", source_cluster), ("target", target_cluster)):
        sides[f"consolidation_{side}"] = dict(endpoint(info), password=password_of(info))
        del sides[f"consolidation_{side}"]["passfile"]
    env = dict((key, value) for key, value in os.environ.items() if not key.startswith("PG"))
    return sides, env


def shown_passwords(run, source_cluster, target_cluster):
    """The sides whose password the job output shows (their names only: a failure must not print them)."""
    return [side for side, info in (("source", source_cluster), ("target", target_cluster))
            if password_of(info) in run.output]


def server_play(play, task, source_cluster, target_cluster, passwords):
    """``play`` whose ``task`` reaches the servers by passfile, or through module_defaults with passwords."""
    if passwords:
        play["module_defaults"] = {"group/classifiedads.consolidation.all": {
            "source": "{{ consolidation_source }}", "target": "{{ consolidation_target }}"}}
    else:
        task.update(source=endpoint(source_cluster), target=endpoint(target_cluster))
    return [play]


def module_playbook(path, name, module, arguments, source_cluster, target_cluster, passwords, task):
    """Writes to ``path`` a play of one task ``name`` running ``module`` (plus ``task``'s keywords) on both servers."""
    path.write_text(yaml.safe_dump(server_play({
        "name": f"{name} with progress", "hosts": "consolidation_controller", "gather_facts": False,
        "tasks": [dict({"name": name, f"classifiedads.consolidation.{module}": arguments}, **task)]},
        arguments, source_cluster, target_cluster, passwords)))
    return path


def copy_playbook(tmp_path, source_cluster, target_cluster, run_id, directory=None, passwords=False, **task):
    path = (directory or tmp_path) / f"{run_id}.yml"
    arguments = {"target_database": TARGET_DB, "run_id": run_id, "truncate": True, "parallel": 1,
                 "modules": [{"name": "Legacy", "source_database": SOURCE_DB, "schema": "legacy"}]}
    return module_playbook(path, "Copy", "data_copy", arguments, source_cluster, target_cluster, passwords, task)


def test_a_long_copy_prints_progress_lines_before_its_result(
        databases, source_cluster, target_cluster, run_playbook, tmp_path):
    servers, env = with_passwords(source_cluster, target_cluster)
    run = run_playbook(copy_playbook(tmp_path, source_cluster, target_cluster, "progress-long", passwords=True),
                       env=env, variables=dict(servers, classifiedads_consolidation_progress_interval=0.3))

    lines = [match.groupdict() for match in LINE.finditer(run.stdout)]
    assert len(lines) >= 2, run.output[-4000:]
    # Printed while the task ran: every line comes after the task's banner and before its result.
    assert run.stdout.index("TASK [Copy]") < run.stdout.index("[localhost] data_copy:") \
        < run.stdout.index("changed: [localhost]"), run.stdout
    # The figures only grow, and the lines saw data move towards a total that fits the source.
    for key in ("done", "copied"):
        figures = [float(line[key]) for line in lines]
        assert figures == sorted(figures), run.stdout
    assert float(lines[-1]["copied"]) > 0, run.stdout
    assert 50 < float(lines[0]["total"]) < 300, run.stdout
    assert any(line["finishing"] or line["eta"] not in (None, "unknown") for line in lines), run.stdout
    assert ROW_MARKER not in run.output
    # The probe logged in with these passwords (the lines above are its work): none of them shows.
    assert shown_passwords(run, source_cluster, target_cluster) == []
    assert run_sql(target_cluster, TARGET_DB, 'SELECT count(*) FROM legacy."Wide"') == [(TABLES["Wide"],)]


def test_a_copy_shorter_than_the_interval_prints_no_progress(
        databases, source_cluster, target_cluster, run_playbook, tmp_path):
    run = run_playbook(copy_playbook(tmp_path, source_cluster, target_cluster, "progress-short"))

    assert printed_during_task(run, "changed: [localhost]") == ""


def test_a_task_with_no_log_prints_no_progress(databases, source_cluster, target_cluster, run_playbook, tmp_path):
    run = run_playbook(copy_playbook(tmp_path, source_cluster, target_cluster, "progress-no-log", no_log=True),
                       variables={"classifiedads_consolidation_progress_interval": 0.3})

    assert printed_during_task(run, "changed: [localhost]") == ""


def test_servers_the_controller_cannot_log_in_to_leave_the_copy_alone_and_print_nothing(
        databases, source_cluster, target_cluster, run_playbook, tmp_path):
    # The passwords exist only in the module's environment (as on a managed host that holds the pgpass file):
    # the controller's look is refused, the copy itself runs as usual.
    sides = {}
    for side, info in (("source", source_cluster), ("target", target_cluster)):
        sides[side] = dict(endpoint(info))
        del sides[side]["passfile"]
    passfile = tmp_path / "pgpass"
    # Each cluster's file says port "*": one file for both needs the ports.
    passfile.write_text("".join(
        f"{host}:{info.port}:{rest}\n"
        for info in (source_cluster, target_cluster)
        for host, _port, rest in [Path(info.passfile).read_text().strip().split(":", 2)]))
    passfile.chmod(0o600)
    path = copy_playbook(tmp_path, source_cluster, target_cluster, "progress-unreachable",
                         environment={"PGPASSFILE": str(passfile)})
    play = yaml.safe_load(path.read_text())
    play[0]["tasks"][0]["classifiedads.consolidation.data_copy"].update(sides)
    path.write_text(yaml.safe_dump(play))
    env = dict((key, value) for key, value in os.environ.items() if not key.startswith("PG"))
    run = run_playbook(path, env=env, variables={"classifiedads_consolidation_progress_interval": 0.3})

    assert printed_during_task(run, "changed: [localhost]") == ""
    assert run_sql(target_cluster, TARGET_DB, 'SELECT count(*) FROM legacy."Wide"') == [(TABLES["Wide"],)]


def test_check_mode_prints_no_progress(databases, source_cluster, target_cluster, run_playbook, tmp_path):
    run = run_playbook(copy_playbook(tmp_path, source_cluster, target_cluster, "progress-check"), "--check",
                       variables={"classifiedads_consolidation_progress_interval": 0.1})

    assert printed_during_task(run, "changed: [localhost]") == ""


def test_under_ansible_runner_each_line_is_an_event_of_the_running_task(
        databases, source_cluster, target_cluster, tmp_path):
    # As AWX runs a job: a private data dir, extra vars, no terminal; its job output is these events.
    project = tmp_path / "project"
    project.mkdir()
    copy_playbook(tmp_path, source_cluster, target_cluster, "progress-runner", directory=project)
    venv_bin = str(Path(sys.executable).parent)
    run = ansible_runner.run(
        private_data_dir=str(tmp_path), playbook="progress-runner.yml", quiet=True,
        inventory=f"[consolidation_controller]\nlocalhost ansible_connection=local "
                  f"ansible_python_interpreter={sys.executable}",
        extravars={"classifiedads_consolidation_progress_interval": 0.3},
        envvars={"ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".ansible", "collections"),
                 "PATH": venv_bin + os.pathsep + os.environ["PATH"]})
    events = list(run.events)
    assert (run.status, run.rc) == ("successful", 0), [event.get("stdout") for event in events]

    task = next(event for event in events if event["event"] == "playbook_on_task_start")
    progress = [event for event in events if "data_copy:" in event.get("stdout", "")]
    assert len(progress) >= 2, [event.get("stdout") for event in events]
    for event in progress:
        assert event["event"] == "verbose"
        assert LINE.match(event["stdout"]), event["stdout"]
        assert event["parent_uuid"] == task["event_data"]["task_uuid"]
    assert ROW_MARKER not in json.dumps(events)


BACKUP_LINE = re.compile(r'^\[localhost\] backup_set: (dumping "Progress_Legacy" \(1/1 databases\)|'
                         r"1 databases, no dump running .*), (?P<read>[\d.]+) MB read of about [\d.]+ MB, "
                         r"[\d.]+ MB/s(, ETA \S+)?$",
                         re.MULTILINE)


def test_a_long_backup_prints_progress_lines_naming_the_database(
        databases, source_cluster, run_playbook, tmp_path):
    playbook = tmp_path / "backup.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Back up with progress", "hosts": "consolidation_controller", "gather_facts": False,
        "tasks": [{"name": "Back up", "classifiedads.consolidation.backup_set": {
            "source": endpoint(source_cluster), "databases": [SOURCE_DB], "backup_root": str(tmp_path / "backups"),
            "set_id": "progress-backup"}}]}]))
    run = run_playbook(playbook, variables={"classifiedads_consolidation_progress_interval": 0.3})

    lines = [match.groupdict() for match in BACKUP_LINE.finditer(run.stdout)]
    assert lines, run.output[-4000:]
    assert "dumping" in run.stdout, run.stdout
    assert run.stdout.index("TASK [Back up]") < run.stdout.index("[localhost] backup_set:") \
        < run.stdout.index("changed: [localhost]"), run.stdout
    read = [float(line["read"]) for line in lines]
    assert read == sorted(read) and read[-1] > 0, run.stdout
    assert ROW_MARKER not in run.output


VERIFIED_DB = "Progress_Verified"
VERIFY_LINE = re.compile(r"^\[localhost\] row_count_diff: (?P<done>\d+)/2 tables measured"
                         r"( \((?P<now>\d) being measured\)|, none being measured now .*), "
                         r"(?P<scanned>[\d.]+) MB of about (?P<total>[\d.]+) MB scanned, [\d.]+ MB/s"
                         r"(, ETA (?P<eta>\S+))?$", re.MULTILINE)


@pytest.fixture(scope="module")
def verified(databases, target_cluster):
    """A consolidated copy of the legacy tables, made with the same statements (so the verification passes)."""
    drop_database(target_cluster, VERIFIED_DB)
    execute(target_cluster, f'CREATE DATABASE "{VERIFIED_DB}"')
    run_sql(target_cluster, VERIFIED_DB, "CREATE SCHEMA legacy")
    for name, rows in TABLES.items():
        run_sql(target_cluster, VERIFIED_DB, TABLE_DDL.format(name=name).replace("public.", "legacy."))
        run_sql(target_cluster, VERIFIED_DB, f'INSERT INTO legacy."{name}" SELECT g, %s || repeat(md5(g::text), 4) '
                f"FROM generate_series(1, %s) g", (ROW_MARKER, rows))
    yield
    drop_database(target_cluster, VERIFIED_DB)


def verify_playbook(tmp_path, source_cluster, target_cluster, name, passwords=False, **task):
    path = tmp_path / f"{name}.yml"
    arguments = {"target_database": VERIFIED_DB, "checksum": True, "workers": 1, "check_sequences": False,
                 "schema_fidelity": "off",
                 "modules": [{"name": "Legacy", "source_database": SOURCE_DB, "schema": "legacy"}]}
    return module_playbook(path, "Verify", "row_count_diff", arguments, source_cluster, target_cluster, passwords, task)


def test_a_long_verification_prints_the_tables_measured_while_it_runs(
        verified, source_cluster, target_cluster, run_playbook, tmp_path):
    servers, env = with_passwords(source_cluster, target_cluster)
    run = run_playbook(verify_playbook(tmp_path, source_cluster, target_cluster, "verify-long", passwords=True),
                       env=env, variables=dict(servers, classifiedads_consolidation_progress_interval=0.3))

    lines = [match.groupdict() for match in VERIFY_LINE.finditer(run.stdout)]
    assert len(lines) >= 2, run.output[-4000:]
    assert run.stdout.index("TASK [Verify]") < run.stdout.index("[localhost] row_count_diff:") \
        < run.stdout.index("ok: [localhost]"), run.stdout
    # The lines saw the large table being measured, on both servers' data (two copies of about 120 MB).
    assert any(line["now"] for line in lines), run.stdout
    assert 100 < float(lines[0]["total"]) < 600, run.stdout
    for key in ("done", "scanned"):
        figures = [float(line[key]) for line in lines]
        assert figures == sorted(figures), run.stdout
    assert ROW_MARKER not in run.output
    assert shown_passwords(run, source_cluster, target_cluster) == []


@pytest.mark.parametrize("how", ["short", "check", "no_log"])
def test_a_short_checked_or_silent_verification_prints_no_progress(
        how, verified, source_cluster, target_cluster, run_playbook, tmp_path):
    path = verify_playbook(tmp_path, source_cluster, target_cluster, f"verify-{how}",
                           **({"no_log": True} if how == "no_log" else {}))
    run = run_playbook(path, *(["--check"] if how == "check" else []),
                       variables={} if how == "short" else {"classifiedads_consolidation_progress_interval": 0.1})

    assert printed_during_task(run, "ok: [localhost]", task="Verify") == ""
