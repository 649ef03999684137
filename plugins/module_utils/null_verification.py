# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification of a table copied under a NULL policy (see :mod:`null_policy`).

The verification measures such a table's source through the policy's plan (table_stats.count_query
and checksum_query take it): the rows the copy kept, with the defaults the copy wrote. What the plan
keeps out is measured on its own, on the source and in the quarantine, and must be the same rows,
key by key and by content: source = target + quarantined, and any other difference still fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.null_policy import (
    KEY_SAMPLE,
    ON_NULL_DEFAULT,
    ON_NULL_QUARANTINE,
    NullPlan,
    acting,
    evaluate_defaults,
    format_key,
    kept_condition,
    key_object,
    primary_key,
    quarantine_table,
    rejected_condition,
    run_read,
    table_policies,
    target_defaults,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.run_state import recorded_quarantine
from ansible_collections.classifiedads.consolidation.plugins.module_utils.table_stats import count_and_checksum

# ONLY, as the copy reads a table: an inheritance parent's own rows (see table_stats.count_query).
REJECTED_SOURCE = ("SELECT {key}::text, hashtextextended(to_jsonb(t)::text, 0) FROM ONLY {table} AS t "
                   "WHERE {condition}")
QUARANTINED_TARGET = ('SELECT key::text, hashtextextended("row"::text, 0) FROM {table} '
                      "WHERE source_database = %s AND source_schema = %s AND source_table = %s")
COLUMN_TYPES = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
"""


def _table_sql(schema, table):
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def _oid(cur, journal, schema, table):
    run_read(cur, journal, "SELECT pg_catalog.to_regclass(%s)::oid", (_table_sql(schema, table).as_string(cur),))
    return cur.fetchone()[0]


def verification_plan(source_session, target_session, journal, pair, policies):
    """The plan of one compared table under its acting ``policies``: ``(NullPlan, problems)``.

    ``source_session``/``target_session`` are open read-only sessions on the table's legacy
    database and on the target database. The target defaults are read and evaluated as the copy
    does; a policy that cannot apply is a problem of the table (it fails the verification).
    """
    with target_session.cursor() as cur:
        target_oid = _oid(cur, journal, pair["target_schema"], pair["target_table"])
        wanted = [name for name, on_null in policies.items() if on_null == ON_NULL_DEFAULT]
        defaults = target_defaults(cur, target_oid, wanted, journal)
        problems = ["on_null: default for column %s, but the target column has no default that can be evaluated "
                    "once" % quote_ident(name) for name in sorted(wanted)
                    if name not in defaults or defaults[name].volatile]
        values = evaluate_defaults(cur, dict((name, default) for name, default in defaults.items()
                                             if not default.volatile), journal)
    with source_session.cursor() as cur:
        source_oid = _oid(cur, journal, pair["source_schema"], pair["source_table"])
        key_columns = primary_key(cur, source_oid, journal)
        run_read(cur, journal, COLUMN_TYPES, (source_oid,))
        types = dict(cur.fetchall())
    missing = sorted(name for name in policies if name not in types)
    problems.extend("on_null policy for column %s, which the source table does not have" % quote_ident(name)
                    for name in missing)
    handled = dict((name, on_null) for name, on_null in policies.items()
                   if name in types and (on_null != ON_NULL_DEFAULT or name in values))
    defaults_found = dict((name, (values[name], types[name])) for name, on_null in handled.items()
                          if on_null == ON_NULL_DEFAULT)
    quarantine = sorted(name for name, on_null in handled.items() if on_null == ON_NULL_QUARANTINE)
    return NullPlan(defaults_found, quarantine, key_columns), problems


def measure_rejected(source_session, target_session, journal, pair, plan, state_schema, recorded=None):
    """What the plan keeps out of one table, on both sides, and which rows it defaults.

    Returns ``{"source": {key: hash}, "quarantined": {key: hash} or None (no quarantine table),
    "defaulted": [key]}``; keys are the rows' key objects as jsonb text (the whole row's hash
    stands in for a table without a primary key). ``recorded``: the quarantined rows a completed run
    kept in its run directory when it dropped the state schema (run_state), read when the table is gone.
    """
    found = {"source": {}, "quarantined": {}, "defaulted": []}
    table = _table_sql(pair["source_schema"], pair["source_table"])
    key = key_object(plan.key_columns)
    with source_session.cursor() as cur:
        if plan.quarantine:
            statement = sql.SQL(REJECTED_SOURCE).format(key=key, table=table, condition=rejected_condition(plan))
            run_read(cur, journal, statement)
            found["source"] = _by_key(cur.fetchall())
        if plan.defaults:
            condition = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(name))
                                             for name in sorted(plan.defaults))
            kept = kept_condition(plan)
            if kept is not None:
                condition = sql.SQL("({}) AND {}").format(condition, kept)
            run_read(cur, journal, sql.SQL("SELECT {}::text FROM ONLY {} AS t WHERE {}").format(key, table, condition))
            found["defaulted"] = sorted(row[0] or "(no primary key)" for row in cur.fetchall())
    if plan.quarantine:
        with target_session.cursor() as cur:
            run_read(cur, journal, "SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                     (quarantine_table(state_schema).as_string(cur),))
            if cur.fetchone()[0]:
                run_read(cur, journal, sql.SQL(QUARANTINED_TARGET).format(table=quarantine_table(state_schema)),
                         (pair["source_database"], pair["source_schema"], pair["source_table"]))
                found["quarantined"] = _by_key(cur.fetchall())
            elif recorded is not None:
                found["quarantined"] = _by_key(recorded_quarantine(recorded, pair["source_database"],
                                                                   pair["source_schema"], pair["source_table"]))
            else:
                found["quarantined"] = None
    return found


def _by_key(rows):
    """{key: sorted hashes}: rows without a key are told apart by their content alone."""
    keyed = {}
    for key, digest in rows:
        keyed.setdefault(key or "(no primary key)", []).append(digest)
    return dict((key, sorted(digests)) for key, digests in keyed.items())


def readable_key(text):
    """A key object's jsonb text as ``Id=...`` for reports."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return text
    if not isinstance(value, dict):
        return text
    return format_key(list(value), list(value.values()))


def judge(row, plan, policies, problems, rejected):
    """The verification row of a policy table, with the policy accounted for. Pure.

    ``row`` is rowdiff.classify's row of the table measured *through the plan* (its source count
    is the rows the copy kept); ``rejected`` what :func:`measure_rejected` found. The source must
    equal the target plus the quarantine: the kept rows match by count (and checksum, when
    taken), and the rows kept out are exactly the quarantined ones, key by key and by content.
    The row gains ``null_policy`` (the policies, defaulted and quarantined keys) and the source
    count becomes the whole table's.
    """
    row = dict(row)
    kept = row["source_rows"]
    source_out = rejected["source"]
    quarantined = rejected["quarantined"]
    out_count = sum(len(digests) for digests in source_out.values())
    quarantined_count = None if quarantined is None else sum(len(digests) for digests in quarantined.values())
    reasons = [reason for reason in row["reasons"] if not reason.startswith("row counts differ")]
    reasons.extend(problems)
    if kept is not None and row["target_rows"] is not None:
        if kept + out_count != row["target_rows"] + (quarantined_count or 0) or kept != row["target_rows"]:
            reasons.insert(0, "row counts differ: source %d (%d kept by the NULL policy, %d kept out), target %d, "
                              "quarantined %d" % (kept + out_count, kept, out_count, row["target_rows"],
                                                  quarantined_count or 0))
        row["source_rows"] = kept + out_count
    if plan.quarantine:
        if quarantined is None:
            reasons.append("the quarantine table does not exist, yet the source holds %d row(s) the policy keeps out"
                           % out_count if out_count else "")
        elif quarantined != source_out:
            differing = sorted(set(source_out) ^ set(quarantined))
            changed = sorted(key for key in set(source_out) & set(quarantined) if source_out[key] != quarantined[key])
            reasons.append("the quarantined rows are not the source rows the policy keeps out: %d missing or extra "
                           "(%s), %d changed since" % (len(differing), ", ".join(readable_key(key) for key in
                                                                                 differing[:KEY_SAMPLE]) or "-",
                                                       len(changed)))
    reasons = [reason for reason in reasons if reason]
    row["null_policy"] = {
        "columns": dict(sorted(policies.items())),
        "defaulted_keys": [readable_key(key) for key in rejected["defaulted"]],
        "quarantined_keys": [readable_key(key) for key in sorted(quarantined or {})],
        "quarantined_rows": quarantined_count or 0,
    }
    row["reasons"] = reasons
    if reasons and row["state"] in ("match", "mismatch"):
        row["state"], row["ok"] = "mismatch", False
    return row


def prepare_verification(pools, journal, modules, pairs, jobs, job_index, target_database):
    """Give each policy table's source measurement its plan: ``{pair index: (plan, policies, problems)}``.

    ``pools`` are the verification's session pools by side; ``jobs``/``job_index`` what
    rowdiff.plan_jobs made. Tables without an acting policy are left as they are.
    """
    by_name = dict((module["name"], module) for module in modules)
    prepared = {}
    for index, pair in enumerate(pairs):
        if pair["kind"] != "copied" or not pair["target_exists"] or job_index[index][0] is None:
            continue
        policies = acting(table_policies(by_name[pair["module"]], pair["source_table"]))
        if not policies:
            continue
        with pools["source"].session(pair["source_database"]) as source, \
                pools["target"].session(target_database) as target:
            plan, problems = verification_plan(source, target, journal, pair, policies)
        jobs[job_index[index][0]]["null_plan"] = plan
        prepared[index] = (plan, policies, problems)
    return prepared


def account_verification(pools, journal, rows, pairs, prepared, target_database, state_schema, column_plans,
                         recorded_quarantine_rows=None):
    """The verification's rows with every policy table judged by :func:`judge`.

    Each also gains ``source_whole``: the legacy table's count and checksum as it is, without the
    policy (``column_plans``' columns), which is what a backup of it holds; the decommission's final
    backup proves itself against that.
    """
    rows = list(rows)
    for index, (plan, policies, problems) in sorted(prepared.items()):
        if rows[index]["state"] not in ("match", "mismatch"):
            continue
        pair = pairs[index]
        with pools["source"].session(pair["source_database"]) as source, \
                pools["target"].session(target_database) as target:
            rejected = measure_rejected(source, target, journal, pair, plan, state_schema, recorded_quarantine_rows)
            columns = column_plans[index]["columns"] if column_plans[index] else None
            with source.cursor() as cur:
                whole_rows, whole_checksum = count_and_checksum(cur, pair["source_schema"], pair["source_table"],
                                                                columns, execute=journal.execute)
        rows[index] = judge(rows[index], plan, policies, problems, rejected)
        rows[index]["source_whole"] = {"rows": whole_rows, "checksum": whole_checksum}
    return rows
