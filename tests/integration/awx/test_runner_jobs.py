"""The AWX example (examples/aap/) run the way AWX runs a job: through ansible-runner.

Each job gets a private data directory as AWX builds one: the project
(examples/aap/project), the inventory with the example's group_vars, the
credentials injected by the example's own credential types (the ``file``
template rendered in AWX's Jinja sandbox into a 0600 file under env/, the
``env`` templates into env/envvars), the job template's extra variables plus
the survey answers in env/extravars (answers tagged ``!unsafe``, as AWX writes
them), the prompt answers AWX gives in env/passwords and timeouts in
env/settings, and no terminal to type into. The jobs run the real playbooks on
the two embedded clusters under a login whose password needs libpq's escaping.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import ansible_runner
import psycopg2
import pytest
import yaml
from conftest import REPO, consolidation_vars, drop_database, execute, run_sql
from devkit import legacy
from jinja2.sandbox import ImmutableSandboxedEnvironment
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.lease import ACQUIRE, write_holder

EXAMPLE = Path(REPO) / "examples" / "aap"
PREFIX = "AWX"
TARGET_DB = "AWX_Consolidated"
LOGIN = "awx_operator"
# ':' and '\' must be escaped in a password file: the credential type's template has to do it.
PASSWORD = "awx:pa\\ss-" + secrets.token_hex(8)
RUN_ID = re.compile(r"^\d{8}T\d{6}Z?[-\w]*$")


def _yaml(name):
    return yaml.safe_load((EXAMPLE / name).read_text())


TEMPLATES = {template["name"].rsplit(" - ", 1)[1]: template
             for template in _yaml("job_templates.yml")["controller_templates"]}
WORKFLOW_NODES = {node["identifier"]: node
                  for node in _yaml("workflow.yml")["controller_workflows"][0]["workflow_nodes"]}
CREDENTIAL_TYPES = {entry["name"]: entry for entry in _yaml("credential_types.yml")["controller_credential_types"]}


class Unsafe(str):
    """A survey answer: AWX writes it with the !unsafe tag, so Ansible never templates it."""


class ExtraVarsDumper(yaml.SafeDumper):
    """AWX's extravars writer: survey answers tagged !unsafe, the job template's own variables plain."""


ExtraVarsDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def inject(credential_type, inputs, private_data_dir):
    """What AWX does with a custom credential: its file template rendered into a 0600 file of env/, then its env
    templates, with ``tower.filename`` naming that file. Returns the environment variables."""
    fields = credential_type["inputs"]["fields"]
    namespace = {field["id"]: inputs.get(field["id"], field.get("default", "")) for field in fields}
    sandbox = ImmutableSandboxedEnvironment()
    handle, path = tempfile.mkstemp(dir=private_data_dir / "env")
    with os.fdopen(handle, "w") as file:
        file.write(sandbox.from_string(credential_type["injectors"]["file"]["template"]).render(**namespace))
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    namespace["tower"] = {"filename": path}
    return {name: sandbox.from_string(template).render(**namespace)
            for name, template in credential_type["injectors"]["env"].items()}


def survey_answers(template, answers):
    """The extra variables a launch sends: the given answers, and a blank for every optional question left alone
    (what the survey form sends), the default for a required one."""
    sent = {}
    for question in template["survey_spec"]["spec"]:
        name = question["variable"]
        if name in answers:
            value = answers[name]
        else:
            value = question["default"] if question["required"] else ""
        sent[name] = [Unsafe(item) for item in value] if isinstance(value, list) else Unsafe(value)
    return sent


@pytest.fixture(scope="module")
def awx_site(tmp_path_factory, source_cluster, target_cluster):
    """The legacy databases, a login with that password on both servers, and the site's inventory variables."""
    for cluster in (source_cluster, target_cluster):
        execute(cluster, sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(LOGIN), sql.Literal(PASSWORD)))
    legacy.create(source_cluster, 0.02, prefix=PREFIX, out=lambda line: None)
    root = tmp_path_factory.mktemp("awx-controller")
    site = consolidation_vars(source_cluster, target_cluster, root, TARGET_DB, PREFIX)
    # The servers come from the credentials, not from here.
    del site["consolidation_source"], site["consolidation_target"]
    yield {"root": root, "vars": site}
    for cluster in (source_cluster, target_cluster):
        found = execute(cluster, "SELECT datname FROM pg_database WHERE datname LIKE %s", params=(PREFIX + "\\_%",))
        for (name,) in found:
            drop_database(cluster, name)
        execute(cluster, sql.SQL("DROP ROLE {}").format(sql.Identifier(LOGIN)))


@pytest.fixture(scope="module")
def awx_job(awx_site, source_cluster, target_cluster, tmp_path_factory):
    """``awx_job(template, answers, artifacts={})``: one job of a job template, as AWX launches it; returns its
    status, its artifacts (set_stats) and its private data directory. ``artifacts`` are the extra variables a
    workflow hands on from the jobs before."""
    jobs = tmp_path_factory.mktemp("awx-jobs")
    counter = iter(range(1, 1000))
    servers = {"ClassifiedAds source server": source_cluster, "ClassifiedAds target server": target_cluster}

    def run(template_name, answers=None, artifacts=None):
        template = TEMPLATES[template_name]
        ident = str(next(counter))
        pdd = jobs / f"job-{ident}"
        shutil.copytree(EXAMPLE / "project", pdd / "project")
        (pdd / "env").mkdir(mode=0o700)
        inventory = pdd / "inventory"
        shutil.copytree(EXAMPLE / "project" / "inventory" / "group_vars", inventory / "group_vars")
        # The persistent controller host is this machine (its run and backup roots survive the jobs).
        controller = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
        (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
            "vars": awx_site["vars"], "children": {"consolidation_controller": {"hosts": controller}}}}))
        # The execution environment's ansible-playbook and collections.
        envvars = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
                   "ANSIBLE_COLLECTIONS_PATH": str(Path(REPO) / ".ansible" / "collections"),
                   "ANSIBLE_NOCOLOR": "1"}
        for name, cluster in servers.items():
            inputs = {"host": cluster.host, "port": str(cluster.port), "username": LOGIN, "password": PASSWORD,
                      "sslmode": "disable"}
            envvars.update(inject(CREDENTIAL_TYPES[name], inputs, pdd))
        (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
        extravars = dict(template.get("extra_vars", {}), **(artifacts or {}))
        extravars.update(survey_answers(template, answers or {}))
        (pdd / "env" / "extravars").write_text(yaml.dump(extravars, Dumper=ExtraVarsDumper))
        # AWX answers the prompts of the credentials it has with their secrets (none here: a local connection).
        (pdd / "env" / "passwords").write_text(json.dumps({
            r"Enter passphrase for .*:\s*?$": "", r"Bad passphrase, try again for .*:\s*?$": "",
            r"Vault password:\s*?$": "", r"(BECOME|SUDO|SU) password.*:\s*?$": ""}))
        # A prompt nobody answers ends the job instead of hanging it.
        (pdd / "env" / "settings").write_text(json.dumps({"idle_timeout": 600, "job_timeout": 900,
                                                          "pexpect_timeout": 5}))
        for path in (pdd / "env").iterdir():
            path.chmod(0o600)
        result = ansible_runner.run(private_data_dir=str(pdd), ident=ident, playbook=template["playbook"], quiet=True)
        stats = [event for event in result.events if event.get("event") == "playbook_on_stats"]
        return {"status": result.status, "rc": result.rc, "stdout": result.stdout.read(),
                "artifacts": stats[-1]["event_data"]["artifact_data"] if stats else None, "dir": pdd}

    return run


def assert_no_secret(*roots):
    """The password, raw or escaped, in no file under ``roots`` but the credential's own 0600 file in env/."""
    needles = [PASSWORD, PASSWORD.replace("\\", "\\\\"), PASSWORD.replace("\\", "\\\\").replace(":", "\\:"),
               json.dumps(PASSWORD)[1:-1]]
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", "replace")
                # pytest.fail, not assert: the assertion's report would print the password.
                if any(needle in text for needle in needles):
                    pytest.fail(f"the password is in {path}")


def databases(cluster):
    return dict(execute(cluster, "SELECT datname, datallowconn FROM pg_database WHERE datname LIKE %s",
                        params=(PREFIX + "\\_%",)))


def test_the_aap_jobs_run_through_ansible_runner(awx_job, awx_site, source_cluster, target_cluster):
    legacy_names = [module["source_database"] for module in awx_site["vars"]["consolidation_modules"]]

    # Rehearsal, every optional answer blank: the default scratch database, dropped after, no run id published.
    rehearsal = awx_job("rehearsal")
    assert rehearsal["status"] == "successful", rehearsal["stdout"][-6000:]
    assert "consolidation_run_id" not in rehearsal["artifacts"]
    assert TARGET_DB + "_rehearsal" not in databases(target_cluster)

    # Consolidate, blank run id and label: a new run, published with its backup set and verification summary.
    consolidate = awx_job("consolidate")
    assert consolidate["status"] == "successful", consolidate["stdout"][-6000:]
    stats = consolidate["artifacts"]
    run_id = stats["consolidation_run_id"]
    assert RUN_ID.match(run_id), stats
    assert stats["backup_set_id"] == run_id
    manifest = json.loads(Path(stats["backup_manifest_path"]).read_text())
    assert sorted(archive["database"] for archive in manifest["archives"]) == sorted(legacy_names)
    # The blank label answer is no label.
    assert {archive["label"] for archive in manifest["archives"]} == {None}
    summary = stats["verify_summary"][run_id]
    assert summary["passed"] is True and summary["mismatch"] == 0 and summary["missing"] == 0
    # consolidation_exclude_tables leaves __EFMigrationsHistory out of every legacy database that has one.
    assert summary["excluded"] == sum(
        run_sql(source_cluster, name, "SELECT count(*) FROM pg_tables WHERE tablename = '__EFMigrationsHistory'")[0][0]
        for name in legacy_names) > 0
    assert summary["match"] == summary["tables"] - summary["excluded"] - summary["extra"]
    assert set(databases(source_cluster)) == set(legacy_names)

    # The decommission template launched with nothing selected: step 8 says "not now" and retires nothing.
    not_now = awx_job("decommission", artifacts={"consolidation_run_id": run_id})
    assert not_now["status"] == "successful", not_now["stdout"][-6000:]
    assert "Step 8 not requested" in not_now["stdout"]
    assert set(databases(source_cluster)) == set(legacy_names)

    # Decommission, as the workflow runs it after the approval: the run id is the consolidate job's artifact.
    decommission = awx_job("decommission", {"decommission_confirm": legacy_names},
                           artifacts={"consolidation_run_id": run_id})
    assert decommission["status"] == "successful", decommission["stdout"][-6000:]
    assert decommission["artifacts"]["consolidation_run_id"] == run_id
    retired = databases(source_cluster)
    assert not set(legacy_names) & set(retired) and len(retired) == len(legacy_names), retired

    # The rollback template launched with a blank run id stops and asks for one, before anything changes.
    unnamed = awx_job("rollback")
    assert unnamed["status"] == "failed"
    assert "Name the run to roll back" in unnamed["stdout"] and "got ''" in unnamed["stdout"]
    assert databases(source_cluster) == retired

    # A failed job of the run keeps its lease, held by the ansible-playbook of that job's execution environment:
    # another machine than the controller host, gone with the job. Here the jobs' ansible-playbook runs on the
    # controller host, so the lease such a job leaves is written as it would be.
    failed_job = dict(host="awx-ee-failed-job", machine_id="e" * 32, boot_id="ee-boot", pid_namespace="pid:[1]",
                      pid=1, pid_started=1)
    with psycopg2.connect(**target_cluster.connect_kwargs(TARGET_DB)) as conn, conn.cursor() as cur:
        write_holder(cur, run_id, failed_job, ACQUIRE)
    conn.close()
    # The rollback template as launched by hand with its defaults is refused at the lease, naming the way out.
    refused = awx_job("rollback", {"consolidation_run_id": run_id})
    assert refused["status"] == "failed"
    assert "awx-ee-failed-job" in refused["stdout"] and "consolidation_lease_run_ended=true" in refused["stdout"]
    assert databases(source_cluster) == retired

    # Rollback of that run as the workflow's failure node runs it: it takes over its own run's lease, and the legacy
    # databases are back under their names and take connections.
    rollback_node = WORKFLOW_NODES["rollback"]
    rollback = awx_job("rollback", dict(rollback_node["extra_data"], consolidation_run_id=run_id))
    assert rollback["status"] == "successful", rollback["stdout"][-6000:]
    assert f"taken_over, held by run {run_id} on awx-ee-failed-job (pid 1, unknown)" in rollback["stdout"]
    assert databases(source_cluster) == {name: True for name in legacy_names}

    jobs = (rehearsal, consolidate, not_now, decommission, unnamed, refused, rollback)
    assert_no_secret(*(job["dir"] / "artifacts" for job in jobs), awx_site["root"])
