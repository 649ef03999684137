# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The consolidation plan: the one variable contract, validated and normalised.

Pure functions of plain data. They raise PlanError with every problem found,
never call fail_json, and are unit-tested case by case.

A *module mapping* names one legacy database and the schema it becomes::

    {"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product",
     "source_schema": "public", "exclude_tables": [],
     "tables": {"schemaversions": {"schema": "public", "table": "schemaversions", "truncate": true}}}

``tables`` overrides where one source table lands (another schema or name),
whether a non-empty target table may be emptied first (a journal the migrator
has just written, say), and per column what becomes of a NULL the target
column forbids (``columns: {UserId: {on_null: quarantine}}``, see null_policy).
``exclude_tables`` (per module, plus the global list) are not copied at all.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import same_server
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import public_endpoint
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.null_policy import normalize_columns
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    backup_files,
    run_files,
    run_id_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schema_inventory import KINDS as SCHEMA_KINDS
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import (
    DEFAULT_PREFIX,
    PREFIX_PATTERN,
    PREFIX_RULE,
    check_prefix,
)

MAX_IDENTIFIER_BYTES = 63
RESERVED_SCHEMAS = ("information_schema",)


DEFAULT_EXCLUDE_TABLES = ["__EFMigrationsHistory"]
# consolidation_fence: read_only sets default_transaction_read_only on every legacy database for the window
# (module_utils/fence.py); none leaves them writable and must say why.
FENCE_MODES = ("read_only", "none")
# consolidation_backup_timing: after_start backs the fenced legacy databases up once the application runs on the
# consolidated database, outside the window; before_copy is the migration plan's literal order (step 1).
BACKUP_TIMINGS = ("after_start", "before_copy")
# consolidation_sync: offline copies inside the window (consolidate.yml); online copies while the application
# runs and streams every later change through a replication slot (sync.yml, then cutover.yml).
SYNC_MODES = ("offline", "online")


def mapping_argument_spec():
    """``modules`` and ``exclude_tables``, as documented once in the ``mapping`` doc fragment."""
    return dict(
        modules=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            source_database=dict(type="str", required=True),
            schema=dict(type="str", required=True),
            source_schema=dict(type="str", default="public"),
            exclude_tables=dict(type="list", elements="str", default=[]),
            tables=dict(type="dict", default={}),
            schema_exclusions=dict(type="list", elements="dict", default=[]),
        )),
        exclude_tables=dict(type="list", elements="str", default=list(DEFAULT_EXCLUDE_TABLES)),
    )


class PlanError(ConsolidationError, ValueError):
    """The contract is not usable; ``problems`` lists every reason."""


def identifier_problem(kind, name):
    """Why ``name`` cannot be a PostgreSQL identifier, or None.

    Names are always quoted, so case and punctuation are fine; what PostgreSQL
    cannot hold is an empty name, a NUL byte or more than 63 bytes (it would
    silently truncate, and two long names could collide).
    """
    if not isinstance(name, str) or name == "":
        return "%s name must be a non-empty string, got %r" % (kind, name)
    if "\x00" in name:
        return "%s name %r contains a NUL byte" % (kind, name)
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        return "%s name %r is longer than %d bytes" % (kind, name, MAX_IDENTIFIER_BYTES)
    return None


def schema_problem(name):
    problem = identifier_problem("schema", name)
    if problem:
        return problem
    if name.lower().startswith("pg_") or name.lower() in RESERVED_SCHEMAS:
        return "schema name %r is reserved by PostgreSQL" % name
    return None


def run_option_problems(run_id, state_schema, slot_prefix):
    """The options the copy, the applier and the sync status share, checked alike: every problem at once."""
    problems = [problem for problem in [run_id_problem(run_id)] if problem]
    problem = schema_problem(state_schema)
    if problem:
        problems.append("state_schema: %s" % problem)
    try:
        check_prefix(slot_prefix)
    except ConsolidationError as exc:
        problems.extend(exc.problems)
    return problems


def _duplicates(values):
    seen, dupes = set(), []
    for value in values:
        key = value.lower() if isinstance(value, str) else value
        if key in seen and value not in dupes:
            dupes.append(value)
        seen.add(key)
    return dupes


def normalize_module(raw, global_excludes):
    """One module mapping with defaults filled in; raises PlanError."""
    problems = []
    name = raw.get("name")
    label = "module %r" % (name,)
    for key in ("name", "source_database", "schema"):
        if not raw.get(key):
            problems.append("%s: %s is required" % (label, key))
    if problems:
        raise PlanError(problems)
    for kind, value in (("database", raw["source_database"]), ("source schema", raw.get("source_schema", "public"))):
        problem = identifier_problem(kind, value)
        if problem:
            problems.append("%s: %s" % (label, problem))
    problem = schema_problem(raw["schema"])
    if problem:
        problems.append("%s: %s" % (label, problem))
    excludes = sorted(set(list(global_excludes or []) + list(raw.get("exclude_tables") or [])))
    tables = {}
    for source_table, override in sorted((raw.get("tables") or {}).items()):
        override = dict(override or {})
        unknown = sorted(set(override) - {"schema", "table", "truncate", "columns"})
        if unknown:
            problems.append("%s: table %r override has unknown keys %s" % (label, source_table, ", ".join(unknown)))
        if source_table in excludes:
            problems.append("%s: table %r is both excluded and overridden" % (label, source_table))
        entry = {
            "schema": override.get("schema") or raw["schema"],
            "table": override.get("table") or source_table,
            "truncate": bool(override.get("truncate", False)),
        }
        for kind, value in (("table", source_table), ("table", entry["table"])):
            problem = identifier_problem(kind, value)
            if problem:
                problems.append("%s: %s" % (label, problem))
        problem = schema_problem(entry["schema"])
        if problem:
            problems.append("%s: table %r: %s" % (label, source_table, problem))
        columns, column_problems = normalize_columns("%s: table %r" % (label, source_table), override.get("columns"))
        problems.extend(column_problems)
        for column in columns:
            problem = identifier_problem("column", column)
            if problem:
                problems.append("%s: table %r: %s" % (label, source_table, problem))
        if columns:
            entry["columns"] = columns
        tables[source_table] = entry
    exclusions, exclusion_problems = normalize_schema_exclusions(label, raw.get("schema_exclusions"))
    problems.extend(exclusion_problems)
    if problems:
        raise PlanError(problems)
    return {
        "name": name,
        "source_database": raw["source_database"],
        "source_schema": raw.get("source_schema") or "public",
        "schema": raw["schema"],
        "exclude_tables": excludes,
        "tables": tables,
        "schema_exclusions": exclusions,
    }


def normalize_schema_exclusions(label, raw):
    """([{kind, name, reason}], problems): the schema-fidelity differences a module accepts, each with its reason.

    ``kind`` is one of the inventory's kinds (schema_inventory.KINDS), ``name``
    the object's schema-relative name as the verification report writes it.
    """
    exclusions, problems, seen = [], [], set()
    if raw is None:
        return exclusions, problems
    if not isinstance(raw, list):
        return exclusions, ["%s: schema_exclusions must be a list of {kind, name, reason}, got %r" % (label, raw)]
    for index, entry in enumerate(raw):
        where = "%s: schema_exclusions[%d]" % (label, index)
        if not isinstance(entry, dict):
            problems.append("%s must be a dictionary with kind, name and reason, got %r" % (where, entry))
            continue
        unknown = sorted(set(entry) - {"kind", "name", "reason"})
        if unknown:
            problems.append("%s has unknown keys %s (expected kind, name, reason)" % (where, ", ".join(unknown)))
        kind, name, reason = entry.get("kind"), entry.get("name"), entry.get("reason")
        reason = reason.strip() if isinstance(reason, str) else reason
        if kind not in SCHEMA_KINDS:
            problems.append("%s: kind %r is not one of %s" % (where, kind, ", ".join(SCHEMA_KINDS)))
        if not isinstance(name, str) or not name:
            problems.append("%s: name must be a non-empty string (the object's name as the report writes it)" % where)
        if not isinstance(reason, str) or not reason:
            problems.append("%s: reason must say why the difference is accepted" % where)
        if (kind, name) in seen:
            problems.append("%s: %s %s is excluded twice" % (where, kind, name))
        seen.add((kind, name))
        exclusions.append({"kind": kind, "name": name, "reason": reason})
    return exclusions, problems


def build_plan(modules, target_database, source, target, global_excludes=None):
    """Validate the whole contract and return the normalised module list.

    ``source`` and ``target`` are connection dictionaries (host/port are all
    that matter here). Raises PlanError listing every problem at once.
    """
    problems = []
    if not modules:
        raise PlanError(["the module mapping is empty: nothing to consolidate"])
    normalized = []
    for raw in modules:
        try:
            normalized.append(normalize_module(raw, global_excludes))
        except PlanError as exc:
            problems.extend(exc.problems)
    problem = identifier_problem("target database", target_database)
    if problem:
        problems.append(problem)
    if problems:
        raise PlanError(problems)

    for kind, key in (("module name", "name"), ("schema", "schema"), ("source database", "source_database")):
        for dupe in _duplicates([module[key] for module in normalized]):
            problems.append("duplicate %s %r (names are compared case-insensitively to avoid near-collisions)"
                            % (kind, dupe))
    if same_server(source, target) and target_database in [module["source_database"] for module in normalized]:
        problems.append("target database %r is one of the legacy databases on the same server: source and target "
                        "must differ" % target_database)
    destinations = {}
    for module in normalized:
        for source_table, entry in module["tables"].items():
            key = (entry["schema"], entry["table"])
            destinations.setdefault(key, []).append("%s.%s" % (module["source_database"], source_table))
    for (schema, table), origins in sorted(destinations.items()):
        if len(origins) > 1:
            problems.append("%s tables %s would all land in %s.%s" % (len(origins), ", ".join(origins), schema, table))
    if problems:
        raise PlanError(problems)
    return normalized


def fence_plan(fence, reason):
    """``{"mode", "reason"}`` of the write fence; raises PlanError for ``none`` without a reason.

    Leaving the legacy databases writable during the window is a decision an
    operator makes on purpose, so it must carry its reason into the reports.
    """
    reason = reason.strip() if isinstance(reason, str) else reason
    if fence not in FENCE_MODES:
        raise PlanError(["consolidation_fence must be one of %s, got %r" % (", ".join(FENCE_MODES), fence)])
    if fence == "none" and not (isinstance(reason, str) and reason):
        raise PlanError(["consolidation_fence none leaves the legacy databases writable during the window: give "
                         "consolidation_fence_reason (why, for the reports), or keep consolidation_fence read_only"])
    return {"mode": fence, "reason": reason or None}


def backup_timing_plan(timing, fence):
    """``{"timing", "reason"}``: when step 1 backs the legacy databases up; raises PlanError for an unknown timing.

    After the start, the backup must still hold the state that was copied: only the fence guarantees that
    nothing wrote to the legacy databases in between. Without one (``fence`` mode ``none``) the backup stays
    before the copy, and the reason says so.
    """
    if timing not in BACKUP_TIMINGS:
        raise PlanError(["consolidation_backup_timing must be one of %s, got %r" % (", ".join(BACKUP_TIMINGS), timing)])
    if timing == "after_start" and fence["mode"] != "read_only":
        return {"timing": "before_copy",
                "reason": "consolidation_fence is %s: only a fenced legacy database is sure to hold, after the "
                          "application has started, what was copied; backed up before the copy instead" % fence["mode"]}
    return {"timing": timing, "reason": None}


def sync_plan(sync, slot_prefix, verify_checksum=True, fence=None):
    """``{"mode", "slot_prefix"}`` of the run's change capture; raises PlanError with every problem.

    Online, the legacy tables keep changing after the copy and the applier replays those changes,
    updates included: equal row counts then prove nothing, so the cutover's verification must
    compare content, and turning the checksums off is refused rather than trusted.
    """
    problems = []
    if sync not in SYNC_MODES:
        problems.append("consolidation_sync must be one of %s, got %r" % (", ".join(SYNC_MODES), sync))
    if not isinstance(slot_prefix, str) or not PREFIX_PATTERN.match(slot_prefix):
        problems.append("consolidation_sync_slot_prefix %r is not valid: it must be %s (it starts the name of every "
                        "replication slot and publication of ours)" % (slot_prefix, PREFIX_RULE))
    if sync == "online" and not verify_checksum:
        problems.append("consolidation_sync online needs verify_checksum true: the legacy tables are written after "
                        "the copy and the applier replays updates, which keep row counts equal, so only the content "
                        "checksums prove that the consolidated tables equal the legacy ones at the cutover (fix: "
                        "drop verify_checksum=false, or use consolidation_sync offline)")
    if sync == "online" and fence is not None and fence.get("mode") == "none":
        problems.append("consolidation_sync online needs the write fence: cutover.yml waits until the appliers have "
                        "applied all that the legacy databases committed up to a point and then stops them, so a "
                        "write the legacy databases still took after that point would be lost while the verification "
                        "may already have read its table (fix: drop consolidation_fence=none, or use "
                        "consolidation_sync offline)")
    if problems:
        raise PlanError(problems)
    return {"mode": sync, "slot_prefix": slot_prefix}


def find_collisions(table_map):
    """Target tables that more than one source table would fill.

    ``table_map`` is a list of (source_database, source_table, schema, table)
    once the real table lists are known; overrides can only be checked
    against the tables the default mapping places, which needs them.
    """
    landing = {}
    for source_database, source_table, schema, table in table_map:
        landing.setdefault((schema, table), []).append("%s.%s" % (source_database, source_table))
    return ["%s would all land in %s.%s" % (", ".join(origins), schema, table)
            for (schema, table), origins in sorted(landing.items()) if len(origins) > 1]


def table_destination(module, source_table):
    """Where one source table of a normalised module lands: (schema, table, truncate) or None if excluded."""
    if source_table in module["exclude_tables"]:
        return None
    entry = module["tables"].get(source_table)
    if entry:
        return entry["schema"], entry["table"], entry["truncate"]
    return module["schema"], source_table, False


def expected_tables(modules, tables_by_database):
    """Pure: {schema: sorted [table]} every copied legacy table needs in the target.

    ``tables_by_database`` maps a legacy database to the tables found in it.
    """
    expected = {}
    for module in modules:
        for source_table in tables_by_database.get(module["source_database"], []):
            destination = table_destination(module, source_table)
            if destination:
                expected.setdefault(destination[0], set()).add(destination[1])
    return dict((schema, sorted(tables)) for schema, tables in expected.items())


def target_schemas(modules):
    """Pure: every schema the copy writes to, module schemas first, then schemas only overrides name."""
    schemas = [module["schema"] for module in modules]
    for module in modules:
        for entry in module["tables"].values():
            if entry["schema"] not in schemas:
                schemas.append(entry["schema"])
    return schemas


def run_plan(run_id, resumed, run_root, backup_root, mode, target_database, modules, exclude_tables, source, target,
             source_facts, target_facts, mode_reason=None, fence=None, rehearsal_of=None, sync=None,
             backup_timing=None):
    """Pure: the plan a run publishes (``plan.json``, ``consolidation_plan``), the handle of every later step.

    ``source``/``target`` are the connections (only host, port and user are kept);
    ``*_facts`` what preflight found on each server; ``fence`` is :func:`fence_plan`'s answer,
    ``backup_timing`` :func:`backup_timing_plan`'s.
    ``rehearsal_of`` names the real target database when ``target_database`` is a rehearsal's scratch
    database; ``sync`` is :func:`sync_plan`'s answer.
    """
    run_dir = os.path.join(run_root, run_id)
    backup_dir = os.path.join(backup_root, run_id)
    legacy_tables = dict((name, entry["tables"]) for name, entry in source_facts["databases"].items())
    return {
        "run_id": run_id,
        "resumed": resumed,
        "run_dir": run_dir,
        "files": run_files(run_dir),
        "backup_dir": backup_dir,
        "backup_files": backup_files(backup_dir),
        "backup_root": backup_root,
        "mode": mode,
        "mode_reason": mode_reason,
        "rehearsal": rehearsal_of is not None,
        "rehearsal_of": rehearsal_of,
        "fence": fence or fence_plan("read_only", None),
        "backup_timing": backup_timing or backup_timing_plan("before_copy", fence or fence_plan("read_only", None)),
        "sync": sync or sync_plan("offline", DEFAULT_PREFIX),
        "target_database": target_database,
        "modules": modules,
        "schemas": target_schemas(modules),
        "exclude_tables": exclude_tables,
        "expected_tables": expected_tables(modules, legacy_tables) if mode == "existing" else {},
        "source": dict(public_endpoint(source), **source_facts),
        "target": dict(public_endpoint(target), **target_facts),
    }


# -- a resumed run's contract ------------------------------------------------------------------------
#
# A resumed run (same run id) may be given a contract that differs from the one its plan.json records.
# contract_changes names each difference; judge_contract_changes decides, from how far the run has got,
# which of them the run can still take (plan.json is rewritten) and which it cannot any more (refused).
# The rule, per field (also in roles/consolidation/defaults/main.yml):
#   target database, mode              never: they name what the whole run works on
#   module added, table re-included    until the verification (the resumed steps create, migrate and copy it)
#   module removed, schema renamed     until its target schema exists (step 2 created objects in it)
#   source database or schema          until the backup (step 1 saved the old one)
#   table excluded, override changed   until the copy starts (it may have copied or placed the table already)
#   anything                           never once the run is complete (its report is the baseline of what follows)

# The stages a run can have reached, in order; RUN_STAGES[i] is reached when its evidence exists.
RUN_STAGES = ("opened", "backed_up", "copy_started", "verified", "completed")
STAGE_WORDS = {
    "backed_up": "step 1 has backed up the legacy databases",
    "copy_started": "step 4 has started copying",
    "verified": "step 5 has verified the copy",
    "completed": "the run has completed",
}


def _override_words(entry):
    words = "%s.%s" % (entry["schema"], entry["table"])
    if entry.get("truncate"):
        words += ", truncate"
    if entry.get("columns"):
        words += ", columns %s" % ", ".join("%s on_null %s" % (name, column.get("on_null"))
                                            for name, column in sorted(entry["columns"].items()))
    return words


def contract_changes(stored, new):
    """Pure: every difference between a stored plan and a new one, as ``{kind, module, field, text, ...}``.

    ``stored``/``new`` are plans as :func:`run_plan` returns them (``modules`` normalised). ``kind``
    is what :func:`judge_contract_changes` decides on; ``text`` names the change for the operator.
    """
    changes = []

    def add(kind, module, field, text, **extra):
        changes.append(dict(extra, kind=kind, module=module, field=field, text=text))

    for field in ("target_database", "mode"):
        if stored.get(field) != new.get(field):
            add(field, None, field, "%s %s -> %s" % (field, stored.get(field), new.get(field)))
    # A plan written before online mode existed was offline.
    was = stored.get("sync") or sync_plan("offline", DEFAULT_PREFIX)
    becomes = new.get("sync") or was
    for field in ("mode", "slot_prefix"):
        if was[field] != becomes[field]:
            add("sync", None, "sync_" + field, "consolidation_sync%s %s -> %s" % (
                "" if field == "mode" else "_" + field, was[field], becomes[field]))
    before = dict((module["name"], module) for module in stored.get("modules") or [])
    after = dict((module["name"], module) for module in new.get("modules") or [])
    for name in sorted(set(before) - set(after)):
        add("module_removed", name, "modules", "module %s removed (schema %s)" % (name, before[name]["schema"]),
            schema=before[name]["schema"])
    for name in sorted(set(after) - set(before)):
        add("module_added", name, "modules", "module %s added (schema %s)" % (name, after[name]["schema"]),
            schema=after[name]["schema"])
    for name in sorted(set(before) & set(after)):
        old, now = before[name], after[name]
        label = "module %s: " % name
        if old["schema"] != now["schema"]:
            add("schema_renamed", name, "schema", label + "schema %s -> %s" % (old["schema"], now["schema"]),
                schema=old["schema"])
        for field in ("source_database", "source_schema"):
            if old[field] != now[field]:
                add("source_changed", name, field, label + "%s %s -> %s" % (field, old[field], now[field]))
        gained = sorted(set(now["exclude_tables"]) - set(old["exclude_tables"]))
        lost = sorted(set(old["exclude_tables"]) - set(now["exclude_tables"]))
        if gained:
            add("tables_excluded", name, "exclude_tables", label + "exclude_tables gained " + ", ".join(gained))
        if lost:
            add("tables_included", name, "exclude_tables", label + "exclude_tables lost " + ", ".join(lost))
        for table in sorted(set(old["tables"]) | set(now["tables"])):
            was, becomes = old["tables"].get(table), now["tables"].get(table)
            if was == becomes:
                continue
            if was is None:
                text = "table %s override added (%s)" % (table, _override_words(becomes))
            elif becomes is None:
                text = "table %s override removed (was %s)" % (table, _override_words(was))
            else:
                text = "table %s override %s -> %s" % (table, _override_words(was), _override_words(becomes))
            add("override_changed", name, "tables", label + text)
    return changes


# kind -> the first stage at which the change is refused (None: judged on the target's schemas instead).
REFUSED_FROM = {
    "target_database": "opened",
    "mode": "opened",
    "module_added": "verified",
    "tables_included": "verified",
    "source_changed": "backed_up",
    "tables_excluded": "copy_started",
    "override_changed": "copy_started",
    "sync": "copy_started",
    "module_removed": None,
    "schema_renamed": None,
}
WHY_REFUSED = {
    "target_database": "a run works on one target database",
    "mode": "a run is either a data consolidation or a fresh deployment from its start",
    "module_added": "its tables would be missing from the verification report the later steps rely on",
    "tables_included": "the table would be missing from the verification report the later steps rely on",
    "source_changed": "the backup set holds the database as it was first named",
    "tables_excluded": "the copy may have copied it already",
    "override_changed": "the copy may have placed or filled the table already",
    "sync": "the copy was taken in the other mode, or its slots carry the other prefix",
    "module_removed": "step 2 has created its schema %s in the target (and the later steps may have filled it)",
    "schema_renamed": "step 2 has created the schema %s in the target (and the later steps may have filled it)",
}
REFUSAL_FIX = ("rerun with the contract the run was opened with (plan.json of run {run_id}), or roll the run back "
               "with rollback.yml and start a new run with the new contract (-e consolidation_run_id=<new id>)")


def judge_contract_changes(changes, stage, target_schemas_present):
    """Pure: ``(applied, refused)`` of :func:`contract_changes`' list for a run that has reached ``stage``.

    ``stage`` is one of RUN_STAGES; ``target_schemas_present`` the schemas that exist in the target
    database now. A refused change gains ``why``: the step it is too late for.
    """
    reached = RUN_STAGES.index(stage)
    applied, refused = [], []
    for change in changes:
        first_refused = REFUSED_FROM[change["kind"]]
        if stage == "completed":
            why = "the run has completed: its verification report is what rollback and decommission rely on"
        elif first_refused is None:
            why = (WHY_REFUSED[change["kind"]] % change["schema"]
                   if change["schema"] in target_schemas_present else None)
        elif reached >= RUN_STAGES.index(first_refused):
            why = WHY_REFUSED[change["kind"]]
            if first_refused != "opened":
                why = "%s: %s" % (STAGE_WORDS[stage], why)
        else:
            why = None
        (refused if why else applied).append(dict(change, why=why) if why else change)
    return applied, refused


def refusal_message(refused, run_id):
    """Why a resumed run stops before anything changes: each refused change, why, and the way out."""
    return ("the contract of run %s changed in a way the run cannot take any more: %s; nothing was changed; %s"
            % (run_id, "; ".join("%s (%s)" % (change["text"], change["why"]) for change in refused),
               REFUSAL_FIX.format(run_id=run_id)))
