# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What online mode needs from the source server, checked before anything changes.

``inspect_sync`` reads the facts (settings, slots and senders in use, the role's rights, each mapped
table's replica identity and owner); ``sync_problems`` is the pure judgement on them, every problem
at once, each naming its fix. ``slot_warnings`` concerns every mode: a slot of ours that nobody
reads keeps WAL on the source until its disk fills.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, sync_names, sync_slots
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_catalog import (
    map_source_tables,
    source_tables,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident

# Roles through which managed services grant what REPLICATION grants elsewhere (membership is enough):
# Amazon RDS/Aurora, Google Cloud SQL and AlloyDB, Azure Database for PostgreSQL.
MANAGED_REPLICATION_ROLES = ("rds_replication", "rds_superuser", "cloudsqlsuperuser", "alloydbsuperuser",
                             "azure_pg_admin")

SERVER = """
SELECT pg_catalog.current_setting('wal_level'), pg_catalog.current_setting('max_replication_slots')::int,
       pg_catalog.current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'walsender')::int,
       current_user, r.rolsuper, r.rolreplication,
       ARRAY(SELECT m.rolname FROM pg_catalog.pg_roles m
             WHERE m.rolname = ANY(%s) AND pg_catalog.pg_has_role(current_user, m.oid, 'MEMBER') ORDER BY 1)
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""
SERVER_KEYS = ("wal_level", "max_replication_slots", "max_wal_senders", "slots_in_use", "senders_in_use",
               "user", "superuser", "replication", "managed_roles")

# Replica identity of each table: a primary key ('d' with one), FULL ('f') or USING INDEX ('i') lets
# UPDATE and DELETE carry the old row's key; anything else cannot be applied on the target. An unlogged
# table writes no WAL, so no publication may hold it.
TABLES = """
SELECT c.relname, pg_catalog.pg_has_role(c.relowner, 'USAGE'),
       c.relreplident = 'f' OR (c.relreplident = 'i' AND EXISTS (
           SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid))
       OR (c.relreplident = 'd' AND EXISTS (
           SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)),
       c.relpersistence = 'p'
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s)
ORDER BY c.relname
"""

# pgoutput, and the slot functions used here, came with PostgreSQL 10.
PGOUTPUT_VERSION = 100000

WAL_LEVEL_FIX = ("set wal_level = logical: on a self-hosted server ALTER SYSTEM SET wal_level = logical and restart "
                 "PostgreSQL; on Amazon RDS/Aurora set rds.logical_replication = 1 in the parameter group and reboot; "
                 "on Google Cloud SQL set the flag cloudsql.logical_decoding = on; on Azure Database for PostgreSQL "
                 "set azure.replication_support = logical (a restart follows)")


def inspect_sync(endpoint, modules, prefix):
    """The facts online mode is judged on: the server's, then per existing legacy database its own."""
    conn = connect(endpoint, endpoint.get("maintenance_db") or "postgres", autocommit=True)
    try:
        if conn.server_version < PGOUTPUT_VERSION:
            return {"server_version": conn.server_version, "slots": [], "databases": {}}
        with conn.cursor() as cur:
            cur.execute(SERVER, (list(MANAGED_REPLICATION_ROLES),))
            facts = dict(zip(SERVER_KEYS, cur.fetchone()), server_version=conn.server_version)
            cur.execute("SELECT datname FROM pg_catalog.pg_database WHERE datname = ANY(%s) AND datallowconn "
                        "AND pg_catalog.has_database_privilege(oid, 'CONNECT')",
                        ([module["source_database"] for module in modules],))
            reachable = set(row[0] for row in cur.fetchall())
        facts["slots"] = sync_slots.list_slots(conn, prefix)
    finally:
        conn.close()
    facts["databases"] = {}
    for module in modules:
        name = module["source_database"]
        if name in reachable:
            facts["databases"][name] = inspect_database(endpoint, module)
    return facts


def inspect_database(endpoint, module):
    """{create, schema, tables: {name: (owned, has identity, logged)}} of the tables the mapping copies."""
    conn = connect(endpoint, module["source_database"], autocommit=True)
    try:
        tables = source_tables(conn, module["source_schema"])
        try:
            mappings, _excluded = map_source_tables(module, tables)
        except copy_plan.CopyPlanError:
            mappings = []  # the mapping's own problem: the copy's preflight names it
        # Partitioned tables hold no rows: their partitions (mapped too) are what is published.
        names = [mapping.source_table for mapping in mappings if tables[mapping.source_table][1] != "p"]
        with conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')")
            create = cur.fetchone()[0]
            cur.execute(TABLES, (module["source_schema"], names))
            found = dict((row[0], tuple(row[1:])) for row in cur.fetchall())
    finally:
        conn.close()
    return {"create": create, "schema": module["source_schema"], "tables": found}


def _table(database, schema, table):
    return "%s.%s.%s" % (quote_ident(database), quote_ident(schema), quote_ident(table))


def sync_problems(facts, run_id=None, prefix=sync_names.DEFAULT_PREFIX):
    """Pure: every reason the source cannot be synchronised online, each with its fix."""
    if facts["server_version"] < PGOUTPUT_VERSION:
        return ["the source server runs PostgreSQL %d.%d, and online mode needs 10 or later (logical replication "
                "with pgoutput): upgrade it, or consolidate with sync=offline"
                % (facts["server_version"] // 10000, facts["server_version"] // 100 % 100)]
    problems = []
    if facts["wal_level"] != "logical":
        problems.append("the source server runs with wal_level = %s, and logical replication slots need logical: %s"
                        % (facts["wal_level"], WAL_LEVEL_FIX))
    databases = sorted(facts["databases"])
    mine = [slot for slot in facts["slots"] if run_id and sync_names.of_run(slot["slot_name"], run_id, prefix)]
    slots_needed = len(databases) - len(mine)  # a rerun's own slots exist already
    if facts["slots_in_use"] + slots_needed > facts["max_replication_slots"]:
        problems.append("the source server has max_replication_slots = %d with %d in use, and online mode needs %d "
                        "more (one per legacy database): raise max_replication_slots to at least %d (a restart) or "
                        "drop slots nobody uses"
                        % (facts["max_replication_slots"], facts["slots_in_use"], slots_needed,
                           facts["slots_in_use"] + slots_needed))
    senders_needed = len(databases) - len([slot for slot in mine if slot["active"]])
    if facts["senders_in_use"] + senders_needed > facts["max_wal_senders"]:
        problems.append("the source server has max_wal_senders = %d with %d in use, and online mode needs %d more "
                        "(one applier stream per legacy database): raise max_wal_senders to at least %d (a restart)"
                        % (facts["max_wal_senders"], facts["senders_in_use"], senders_needed,
                           facts["senders_in_use"] + senders_needed))
    if not (facts["superuser"] or facts["replication"] or facts["managed_roles"]):
        problems.append("the source role %s may not create or stream from replication slots: ALTER ROLE %s "
                        "REPLICATION (on a managed service grant its replication role instead, e.g. GRANT "
                        "rds_replication TO %s)" % (quote_ident(facts["user"]), quote_ident(facts["user"]),
                                                    quote_ident(facts["user"])))
    for database in databases:
        entry = facts["databases"][database]
        if not (entry["create"] or facts["superuser"]):
            problems.append("the source role %s has no CREATE privilege on the legacy database %s, which creating "
                            "its publication needs: GRANT CREATE ON DATABASE %s TO %s"
                            % (quote_ident(facts["user"]), quote_ident(database), quote_ident(database),
                               quote_ident(facts["user"])))
        tables = entry["tables"]
        foreign = [_table(database, entry["schema"], name) for name, (owned, _identity, _logged)
                   in sorted(tables.items()) if not (owned or facts["superuser"])]
        if foreign:
            problems.append("the source role %s does not own these tables, which CREATE PUBLICATION ... FOR TABLE "
                            "needs: %s (fix: ALTER TABLE ... OWNER TO %s, or run as their owner)"
                            % (quote_ident(facts["user"]), ", ".join(foreign), quote_ident(facts["user"])))
        unlogged = [_table(database, entry["schema"], name) for name, (_owned, _identity, logged)
                    in sorted(tables.items()) if not logged]
        if unlogged:
            problems.append("these tables are unlogged, so their changes never reach the WAL a slot reads and no "
                            "publication may hold them: %s (fix: ALTER TABLE ... SET LOGGED on each, or exclude "
                            "them from the mapping)" % ", ".join(unlogged))
        missing = [_table(database, entry["schema"], name) for name, (_owned, identity, _logged)
                   in sorted(tables.items()) if not identity]
        if missing:
            problems.append("these tables have neither a primary key nor a replica identity, so their updates and "
                            "deletes cannot be applied to the target: %s (fix: add a primary key, or ALTER TABLE "
                            "... REPLICA IDENTITY FULL on each)" % ", ".join(missing))
    return problems


def slot_warnings(slots, run_id=None, online=False, prefix=sync_names.DEFAULT_PREFIX):
    """One warning per slot of ours on the source, except an online run's own slots: sync.yml made them for
    cutover.yml (or rollback.yml) of that run, which drops them; sync_status reports whether they are read."""
    return [sync_slots.slot_warning(slot) for slot in slots
            if not (online and run_id and sync_names.of_run(slot["slot_name"], run_id, prefix))]
