"""Every role documents and declares the same variables (defaults/main.yml vs meta/argument_specs.yml), names its
facts after itself, and every variable a playbook reads is declared by a role or set by one."""

from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.nodes
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ROLES = sorted(path for path in (REPO / "roles").iterdir() if path.is_dir())
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))

# Keys whose value is a bare Jinja expression rather than a template.
CONDITIONS = {"when", "changed_when", "failed_when", "until", "that"}
# What every play can read without declaring it: Jinja's and Ansible's globals, loop and magic variables
# (and every ansible_* variable).
PROVIDED = set(jinja2.Environment().globals) | {
    "lookup", "query", "q", "now", "undef", "omit", "item", "hostvars", "groups", "inventory_hostname", "playbook_dir"}


def declared(role: Path) -> set[str]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {name for entry in specs.values() for name in (entry.get("options") or {})}


def tasks_of(entries):
    """Every task of a task list, inside blocks too."""
    for entry in entries or []:
        yield entry
        for section in ("block", "rescue", "always"):
            yield from tasks_of(entry.get(section))


def role_tasks(role: Path):
    for path in sorted((role / "tasks").glob("*.yml")):
        yield from tasks_of(yaml.safe_load(path.read_text()))


def set_by(role: Path) -> set[str]:
    """The facts and registers a role's tasks set."""
    names = set()
    for task in role_tasks(role):
        names |= set(task.get("ansible.builtin.set_fact") or {}) - {"cacheable"}
        names |= {task["register"]} if "register" in task else set()
    return names


def read_by(node, key=None) -> set[str]:
    """Every variable the templates and conditions in a parsed YAML document read."""
    if isinstance(node, dict):
        return set().union(*(read_by(value, name) for name, value in node.items()))
    if isinstance(node, list):
        return set().union(*(read_by(value, key) for value in node))
    if isinstance(node, str) and (key in CONDITIONS or "{{" in node):
        source = "{{ " + node + " }}" if key in CONDITIONS else node
        names = list(jinja2.Environment().parse(source).find_all(jinja2.nodes.Name))
        # Names a template assigns itself (loop targets, {% set %}) are not read from the play.
        return {name.name for name in names if name.ctx == "load"} - {name.name for name in names if name.ctx != "load"}
    return set()


def role_imports(plays):
    """(role directory, vars passed) of every import_role/include_role in the plays."""
    for play in plays:
        for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            for task in tasks_of(play.get(section)):
                spec = task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role")
                if spec:
                    yield REPO / "roles" / spec["name"].rsplit(".", 1)[-1], task.get("vars") or {}


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_defaults_are_declared_and_prefixed(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    assert set(defaults) <= declared(role), f"undeclared in meta/argument_specs.yml: {set(defaults) - declared(role)}"
    assert all(name.startswith(role.name + "_") for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_declared_variables_are_prefixed(role):
    assert all(name.startswith(role.name + "_") for name in declared(role)), sorted(declared(role))


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_facts_are_internal_or_published_under_the_role_name(role):
    # __<role>_* is internal; <role>_* is published for the playbooks (consolidation_plan, restore_run_plan...).
    task_vars = {name for task in role_tasks(role) for name in task.get("vars") or {}}
    internal, published = f"__{role.name}_", f"{role.name}_"
    assert all(name.startswith((internal, published)) for name in set_by(role)), sorted(set_by(role))
    assert all(name.startswith(internal) for name in task_vars), sorted(task_vars)


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=[playbook.name for playbook in PLAYBOOKS])
def test_every_variable_a_playbook_reads_is_declared_or_set_by_a_role(playbook):
    known = PROVIDED.union(*(declared(role) | set_by(role) for role in ROLES))
    unknown = {name for name in read_by(yaml.safe_load(playbook.read_text()))
               if name not in known and not name.startswith("ansible_")}
    assert not unknown, f"declared in no meta/argument_specs.yml and set by no role: {sorted(unknown)}"


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=[playbook.name for playbook in PLAYBOOKS])
def test_playbooks_hand_roles_only_variables_they_declare(playbook):
    for role, variables in role_imports(yaml.safe_load(playbook.read_text())):
        assert set(variables) <= declared(role), f"{role.name} declares no {sorted(set(variables) - declared(role))}"


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=[playbook.name for playbook in PLAYBOOKS])
def test_playbooks_set_no_facts_of_their_own(playbook):
    # Thin playbooks: a fact a play needs is a role's (with its prefix), not the playbook's.
    tasks = [task for play in yaml.safe_load(playbook.read_text()) for task in tasks_of(play.get("tasks"))]
    assert not [task["name"] for task in tasks if "ansible.builtin.set_fact" in task or "register" in task]


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_roles_claim_the_ansible_core_floor_of_the_collection(role):
    requires = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["requires_ansible"]
    floor = ".".join(requires.removeprefix(">=").split(".")[:2])
    assert yaml.safe_load((role / "meta" / "main.yml").read_text())["galaxy_info"]["min_ansible_version"] == floor
