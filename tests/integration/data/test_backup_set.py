"""backup_set against a real PostgreSQL 15: archives, manifest, idempotence, refusals, restore round trip."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time

import psycopg2
import pytest
from conftest import drop_database, endpoint, execute
from constants import HOSTILE
from devkit import legacy
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import verify_archive

pytestmark = pytest.mark.integration

PREFIX = "BackupCase"
LEGACY = [f"{PREFIX}_{name}" for name in ("Product", "Identity", "Storage", "Notification", "AuditLog",
                                          "Configuration")]


def table_counts(info, dbname):
    """Exact count(*) of every ordinary table outside the system schemas."""
    counts = {}
    for schema, table in execute(info, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                                       "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname "
                                       "NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'",
                                 dbname):
        counts[(schema, table)] = execute(info, sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(schema, table)), dbname)[0][0]
    return counts


def conninfo(dbname):
    """A libpq connection string naming ``dbname``: a bare name with "=" would be parsed as one."""
    escaped = dbname.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"


def manifest_counts(entry):
    return {(table["schema"], table["table"]): table["rows"] for table in entry["tables"]}


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def legacy_databases(source_cluster):
    """The six legacy ClassifiedAds databases (small scale) and one with a hostile name and odd tables."""
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    drop_database(source_cluster, HOSTILE)
    execute(source_cluster, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(HOSTILE)))
    execute(source_cluster, """
        CREATE SCHEMA "Other Schema";
        CREATE TABLE "Other Schema"."a b" (x int);
        CREATE TABLE "Other Schema"."a"" b" (x int);
        CREATE TABLE public."a""; DROP TABLE x; --" (id serial PRIMARY KEY, note text);
        INSERT INTO "Other Schema"."a b" SELECT generate_series(1, 3);
        INSERT INTO public."a""; DROP TABLE x; --" (note) SELECT md5(i::text) FROM generate_series(1, 50) i;
    """, HOSTILE)
    yield LEGACY + [HOSTILE]
    drop_database(source_cluster, HOSTILE)
    legacy.drop(source_cluster, prefix=PREFIX)


def backup_args(source_cluster, databases, root, set_id="run-1", **extra):
    args = dict(source=endpoint(source_cluster), databases=databases, backup_root=str(root), set_id=set_id)
    args.update(extra)
    return args


@pytest.fixture(scope="module")
def first_backup(run_module, source_cluster, legacy_databases, tmp_path_factory):
    root = tmp_path_factory.mktemp("backups") / "root"
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases, root))
    assert not result["failed"], result
    return root, result


def test_every_database_gets_a_verified_private_archive(first_backup, source_cluster, legacy_databases):
    root, result = first_backup
    set_dir = root / "run-1"
    assert result["changed"] and result["dumped"] == legacy_databases and result["kept"] == []
    assert result["path"] == str(set_dir)
    assert mode(root) == 0o700 and mode(set_dir) == 0o700
    files = sorted(os.listdir(set_dir))
    assert files == sorted([entry["file"] for entry in result["manifest"]["archives"]] + ["manifest.json"])
    assert "a%22%3B%20DROP%20TABLE%20x%3B%20--.dump" in files and f"{PREFIX}_Product.dump" in files
    for name in files:
        assert mode(set_dir / name) == 0o600, name
    assert not glob.glob(str(set_dir / "*.partial"))


def test_manifest_describes_each_archive_exactly(first_backup, source_cluster, legacy_databases):
    root, result = first_backup
    set_dir = root / "run-1"
    manifest = json.loads((set_dir / "manifest.json").read_text())
    assert manifest == result["manifest"]
    assert manifest["set_id"] == "run-1" and manifest["created_at"].endswith("Z")
    assert manifest["source"]["server"] == f"{source_cluster.host}:{source_cluster.port}"
    assert manifest["source"]["server_version"].startswith("15.")
    assert manifest["pg_dump"]["version"].startswith("15.")
    assert [entry["database"] for entry in manifest["archives"]] == sorted(legacy_databases)
    for entry in manifest["archives"]:
        path = set_dir / entry["file"]
        assert entry["format"] == "custom" and entry["verified"] is True and entry["label"] is None
        assert entry["verification"]["full_read"] and entry["verification"]["toc_tables"] == len(entry["tables"])
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["size"] == path.stat().st_size
        assert entry["started_at"] <= entry["finished_at"]
        assert manifest_counts(entry) == table_counts(source_cluster, entry["database"]), entry["database"]
    product = next(e for e in manifest["archives"] if e["database"] == f"{PREFIX}_Product")
    assert manifest_counts(product)[("public", "__EFMigrationsHistory")] == 1  # the whole database is kept
    hostile = next(e for e in manifest["archives"] if e["database"] == HOSTILE)
    assert manifest_counts(hostile) == {("Other Schema", "a b"): 3, ("Other Schema", 'a" b'): 0,
                                        ("public", HOSTILE): 50}


def test_result_reports_queries_and_commands_without_secrets(first_backup):
    result = first_backup[1]
    dumps = [argv for argv in result["commands"] if os.path.basename(argv[0]) == "pg_dump" and len(argv) > 2]
    assert len(dumps) == 7
    for argv in dumps:
        assert "--format=custom" in argv and "--no-password" in argv
        assert any(arg.startswith("--snapshot=") for arg in argv)
        assert not any(arg.startswith(("--dbname", "-d")) for arg in argv)
    assert any(query.startswith("SELECT count(*) FROM ONLY") for query in result["queries"])
    assert any("pg_export_snapshot" in query for query in result["queries"])


def test_rerun_changes_nothing_and_leaves_archives_untouched(first_backup, run_module, source_cluster,
                                                             legacy_databases):
    root = first_backup[0]
    set_dir = root / "run-1"
    before = {name: os.stat(set_dir / name).st_mtime_ns for name in os.listdir(set_dir)}
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases, root))
    assert not result["failed"], result
    assert not result["changed"] and result["dumped"] == [] and result["kept"] == legacy_databases
    assert {name: os.stat(set_dir / name).st_mtime_ns for name in os.listdir(set_dir)} == before


def test_check_mode_writes_nothing(run_module, source_cluster, legacy_databases, tmp_path):
    root = tmp_path / "root"
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases, root), check=True)
    assert not result["failed"], result
    assert result["changed"] and result["dumped"] == legacy_databases
    assert result["space"]["sufficient"] and result["space"]["needed"] > 0
    assert result["manifest"] is None
    assert [item["size"] > 0 for item in result["databases"]] == [True] * len(legacy_databases)
    assert not root.exists()


def test_interrupted_and_damaged_archives_are_redone(run_module, source_cluster, legacy_databases, tmp_path):
    root = tmp_path / "root"
    databases = legacy_databases[:3]
    first = run_module("backup_set", backup_args(source_cluster, databases, root))
    assert not first["failed"], first
    set_dir = root / "run-1"
    product, identity, storage = (next(e for e in first["manifest"]["archives"] if e["database"] == name)
                                  for name in databases)
    # A run killed mid-dump leaves a .partial; a truncated archive no longer matches its checksum.
    (set_dir / (identity["file"] + ".partial")).write_bytes(b"PGDMP half")
    truncated = set_dir / storage["file"]
    truncated.write_bytes(truncated.read_bytes()[:200])
    problem = verify_archive(str(truncated), storage["sha256"], storage["size"])
    assert str(truncated) in problem and "200 bytes" in problem

    check = run_module("backup_set", backup_args(source_cluster, databases, root), check=True)
    assert check["removed_partials"] == [identity["file"] + ".partial"]
    assert [item["action"] for item in check["databases"]] == ["keep", "keep", "redo"]
    assert (set_dir / (identity["file"] + ".partial")).exists()

    product_mtime = os.stat(set_dir / product["file"]).st_mtime_ns
    again = run_module("backup_set", backup_args(source_cluster, databases, root))
    assert not again["failed"], again
    assert again["changed"] and again["dumped"] == [storage["database"]]
    assert again["removed_partials"] == [identity["file"] + ".partial"]
    assert "no longer matches its sha256" in again["databases"][2]["reason"]
    redone = next(e for e in again["manifest"]["archives"] if e["database"] == storage["database"])
    assert verify_archive(str(set_dir / redone["file"]), redone["sha256"], redone["size"]) is None
    assert os.stat(set_dir / product["file"]).st_mtime_ns == product_mtime
    assert sorted(os.listdir(set_dir)) == sorted([product["file"], identity["file"], storage["file"],
                                                  "manifest.json"])


def test_labelled_generation_lives_beside_the_first(run_module, source_cluster, legacy_databases, tmp_path):
    root = tmp_path / "root"
    databases = legacy_databases[:2]
    assert not run_module("backup_set", backup_args(source_cluster, databases, root))["failed"]
    final = run_module("backup_set", backup_args(source_cluster, databases, root, label="final"))
    assert not final["failed"], final
    assert final["changed"] and final["label"] == "final"
    assert [(e["database"], e["label"]) for e in final["manifest"]["archives"]] == (
        [(name, None) for name in sorted(databases)] + [(name, "final") for name in sorted(databases)])
    assert os.path.exists(root / "run-1" / f"{databases[0]}.final.dump")
    assert not run_module("backup_set", backup_args(source_cluster, databases, root, label="final"))["changed"]


def test_archives_restore_to_the_counted_rows(first_backup, target_cluster):
    root, result = first_backup
    set_dir = root / "run-1"
    pg_restore = result["pg_dump"]["path"].replace("pg_dump", "pg_restore")
    for entry in result["manifest"]["archives"]:
        scratch = "Restore_" + entry["database"][:40]
        drop_database(target_cluster, scratch)
        execute(target_cluster, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            env = dict(os.environ, **target_cluster.libpq_env(), PGDATABASE=scratch)
            subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "--dbname=" + conninfo(scratch),
                            str(set_dir / entry["file"])], check=True, env=env, capture_output=True)
            assert table_counts(target_cluster, scratch) == manifest_counts(entry), entry["database"]
        finally:
            drop_database(target_cluster, scratch)


def test_counts_and_archive_share_one_snapshot_under_concurrent_writes(run_module, source_cluster, target_cluster,
                                                                       tmp_path):
    """A writer commits rows all through the backup: the archive must hold exactly the counted rows."""
    name = "Snapshot_Case"
    drop_database(source_cluster, name)
    execute(source_cluster, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    execute(source_cluster, "CREATE TABLE events (id bigserial PRIMARY KEY, payload text NOT NULL); "
                            "INSERT INTO events (payload) SELECT repeat(md5(i::text), 8) "
                            "FROM generate_series(1, 200000) i", name)
    stop = threading.Event()
    inserted = []

    def writer():
        conn = psycopg2.connect(**source_cluster.connect_kwargs(name))
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO events (payload) SELECT 'w' FROM generate_series(1, 50)")
                inserted.append(50)
                time.sleep(0.002)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not inserted:
            time.sleep(0.01)
        result = run_module("backup_set", backup_args(source_cluster, [name], tmp_path / "root"))
    finally:
        stop.set()
        thread.join()
    assert not result["failed"], result
    entry = result["manifest"]["archives"][0]
    counted = manifest_counts(entry)[("public", "events")]
    assert execute(source_cluster, "SELECT count(*) FROM events", name)[0][0] > counted  # writes went on
    scratch = "Snapshot_Restore"
    drop_database(target_cluster, scratch)
    execute(target_cluster, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        env = dict(os.environ, **target_cluster.libpq_env(), PGDATABASE=scratch)
        subprocess.run([result["pg_dump"]["path"].replace("pg_dump", "pg_restore"), "--no-owner", "--exit-on-error",
                        "--dbname=" + conninfo(scratch), os.path.join(result["path"], entry["file"])],
                       check=True, env=env, capture_output=True)
        assert execute(target_cluster, "SELECT count(*) FROM events", scratch)[0][0] == counted
    finally:
        drop_database(target_cluster, scratch)
        drop_database(source_cluster, name)


def test_space_threshold_refuses_before_writing(run_module, source_cluster, legacy_databases, tmp_path):
    root = tmp_path / "root"
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases, root, space_factor=1e9))
    assert result["failed"]
    assert result["msg"].startswith(f"not enough free space at {root}: need ")
    assert "bytes free" in result["msg"] and LEGACY[0] in result["msg"]
    assert not root.exists()


@pytest.fixture
def tiny_filesystem(tmp_path):
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def test_full_filesystem_is_refused_with_needed_and_free_bytes(run_module, source_cluster, legacy_databases,
                                                               tiny_filesystem):
    root = tiny_filesystem / "backups"
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases, root))
    assert result["failed"]
    free = os.statvfs(tiny_filesystem).f_bavail * os.statvfs(tiny_filesystem).f_frsize
    assert f"{free} bytes free" in result["msg"] and "need " in result["msg"]
    assert os.listdir(tiny_filesystem) == []
    check = run_module("backup_set", backup_args(source_cluster, legacy_databases, root), check=True)
    assert not check["failed"] and check["space"]["sufficient"] is False and check["space"]["free"] == free


def test_older_pg_dump_is_refused(run_module, source_cluster, legacy_databases, tmp_path):
    bindir = tmp_path / "pg14" / "bin"
    bindir.mkdir(parents=True)
    for program in ("pg_dump", "pg_restore"):
        (bindir / program).write_text(f"#!/bin/sh\necho '{program} (PostgreSQL) 14.13'\n")
        (bindir / program).chmod(0o755)
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases, tmp_path / "root",
                                                  pg_dump_path=str(bindir / "pg_dump")))
    assert result["failed"]
    assert result["msg"].startswith(f"{bindir / 'pg_dump'} is pg_dump 14, older than the source server "
                                    "(PostgreSQL 15)")
    assert not (tmp_path / "root").exists()


def test_missing_database_is_named(run_module, source_cluster, legacy_databases, tmp_path):
    result = run_module("backup_set", backup_args(source_cluster, [LEGACY[0], "classifiedads_product"],
                                                  tmp_path / "root"))
    assert result["failed"] and "classifiedads_product do not exist" in result["msg"]


def test_password_never_leaves_the_role(source_cluster, legacy_databases, tmp_path, run_playbook):
    """The backup role through ansible-playbook -vvv with a password login: the password is in no output, no
    argv, no file of the set; the role reports the set and publishes it with set_stats."""
    password = "pw-" + secrets.token_urlsafe(18)
    login = "cad_backup_pw"
    execute(source_cluster, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
    execute(source_cluster, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_read_all_data").format(
        sql.Identifier(login), sql.Literal(password)))
    import ansible_collections.classifiedads.consolidation as collection

    collections_path = os.path.dirname(os.path.dirname(os.path.dirname(collection.__path__[0])))
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(json.dumps({"vault_backup_password": password}))
    secrets_file.chmod(0o600)
    root = tmp_path / "root"
    plan = {"run_id": "pw-run", "backup_root": str(root), "backup_dir": str(root / "pw-run"),
            "target_database": "ClassifiedAds", "exclude_tables": ["__EFMigrationsHistory"],
            "modules": [{"name": "Configuration", "source_database": LEGACY[-1], "schema": "configuration"},
                        {"name": "Hostile", "source_database": HOSTILE, "schema": "hostile"}]}
    playbook = tmp_path / "backup.yml"
    playbook.write_text(json.dumps([{
        "name": "Back up", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "vars_files": [str(secrets_file)],
        "module_defaults": {"group/classifiedads.consolidation.all": {"source": {
            "host": source_cluster.host, "port": source_cluster.port, "user": login,
            "password": "{{ vault_backup_password }}", "sslmode": "disable"}}},
        "tasks": [{"name": "Step 1", "ansible.builtin.import_role": {"name": "classifiedads.consolidation.backup"},
                   "vars": {"backup_plan": plan}},
                  {"name": "Show what the role published", "ansible.builtin.debug": {
                      "msg": "{{ backup_set_id }} {{ backup_manifest_path }}"}}],
    }]))
    # INJECT_INVOCATION puts the module's arguments into the printed result: the password must show masked.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR="1",
               ANSIBLE_INJECT_INVOCATION="true", ANSIBLE_SHOW_CUSTOM_STATS="true", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    for key in ("PGPASSFILE", "PGPASSWORD"):
        env.pop(key, None)
    try:
        run = run_playbook(playbook, "-vvv", inventory="localhost,", env=env, cwd=tmp_path)
        again = run_playbook(playbook, inventory="localhost,", env=env, cwd=tmp_path, expect_rc=None)
    finally:
        execute(source_cluster, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
    output = run.output
    assert password not in output and password not in again.stdout + again.stderr
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output and "--snapshot=" in output
    manifest_path = str(root / "pw-run" / "manifest.json")
    assert f"pw-run {manifest_path}" in output  # the published facts
    assert f'"backup_manifest_path": "{manifest_path}"' in output  # set_stats
    assert "Dumped 2, kept 0" in output and "Dumped 0, kept 2" in again.stdout
    assert re.search(rf'^\s*"{LEGACY[-1]}\s+dump\s+\d+\s+\d+\s+\d+\s+\d+\s+True\s+[0-9a-f]{{16}}",?$', output, re.M)
    assert "changed=0" in again.stdout
    for name in os.listdir(root / "pw-run"):
        assert password.encode() not in (root / "pw-run" / name).read_bytes(), name
    for leftover in glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), "cad-pgpass-*", "pgpass")):
        assert password not in open(leftover).read(), leftover  # the private pgpass is gone after the run
    shutil.rmtree(root)


def test_planted_set_directory_is_refused(run_module, source_cluster, legacy_databases, tmp_path):
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "run-1").symlink_to(elsewhere)
    result = run_module("backup_set", backup_args(source_cluster, legacy_databases[:1], root))
    assert result["failed"] and "is not a directory (a symlink?)" in result["msg"]
    assert os.listdir(elsewhere) == []
