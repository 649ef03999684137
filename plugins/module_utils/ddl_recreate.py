# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``migrator_mode: source_ddl``: recreate the legacy table definitions in the target schemas.

Reads every module's source catalog (``ddl_catalog``), plans the statements
(``ddl_clone``, pure) and runs them, one transaction per module. Problems of
all modules are reported together before anything runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, psycopg2
from ansible_collections.classifiedads.consolidation.plugins.module_utils.ddl_catalog import read_source, read_target
from ansible_collections.classifiedads.consolidation.plugins.module_utils.ddl_clone import (
    DdlError,
    destination,
    flatten_steps,
    plan_module,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import describe
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import postgres_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import find_collisions


def plan_all(source, target_conn, modules, check_mode, warnings):
    """Read every module's catalogs and plan it; raises DdlError listing the problems of all modules.

    ``target_conn`` is None when the target database does not exist yet (check
    mode only): then everything would be created. In check mode a missing
    target schema is a warning (the schemas role, checked too, would create it).
    """
    plans, problems, table_map = [], [], []
    for module in modules:
        conn = connect(source, module["source_database"])
        try:
            catalog = read_source(conn, module)
        finally:
            conn.close()
        if catalog is None:
            problems.append("module %s: schema %s does not exist in database %s"
                            % (module["name"], module["source_schema"], module["source_database"]))
            continue
        for name in catalog["tables"]:
            place = destination(module, name)
            if place is not None:
                table_map.append((module["source_database"], name) + place)
        existing, missing = {"tables": {}, "sequences": {}, "types": {}}, []
        if target_conn is not None:
            existing, missing = read_target(target_conn, module, catalog["tables"])
        if missing:
            message = "module %s: schema(s) %s do not exist in the target database (the schemas role creates them)" % (
                module["name"], ", ".join(missing))
            if not check_mode:
                problems.append(message)
                continue
            warnings.append(message)
        try:
            plans.append((module, plan_module(module, catalog, existing)))
        except DdlError as exc:
            problems += ["module %s: %s" % (module["name"], problem) for problem in exc.problems]
    problems += find_collisions(table_map)
    if problems:
        raise DdlError(problems)
    return plans


class SourceDdl(object):
    """One recreation: ``run()`` plans every module, then (unless in check mode) applies module by module.

    ``tables``, ``warnings`` and the journal's queries grow as it goes, so a
    failure can still report what was planned and done.
    """

    def __init__(self, source, target, database, modules, journal):
        self.source, self.target, self.database, self.modules = source, target, database, modules
        self.journal = journal
        self.tables, self.warnings, self.done = [], [], []
        self.changed = False

    def run(self):
        admin = conn = None
        try:
            admin = connect(self.target, self.target["maintenance_db"], autocommit=True)
            with admin.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (self.database,))
                database_exists = cur.fetchone() is not None
            if database_exists:
                conn = connect(self.target, self.database)
            elif self.journal.check_mode:
                self.warnings.append("target database %s does not exist yet (the schemas role creates it): every "
                                     "table would be created" % self.database)
            else:
                raise DdlError(["target database %s does not exist on %s: the schemas role creates it"
                                % (self.database, describe(self.target))])
            plans = plan_all(self.source, conn, self.modules, self.journal.check_mode, self.warnings)
            for mapping, plan in plans:
                self._apply(conn or admin, mapping, plan)
        except psycopg2.Error as exc:
            raise DdlError(["reading the catalogs failed: %s" % postgres_problem(exc)]) from None
        finally:
            for connection in (conn, admin):
                if connection is not None:
                    connection.close()

    def _apply(self, conn, mapping, plan):
        self.warnings += ["module %s: %s" % (mapping["name"], warning) for warning in plan["warnings"]]
        self.tables += plan["tables"]
        self.changed = self.changed or bool(plan["steps"])
        statements = flatten_steps(plan["steps"]) if plan["steps"] else []
        with conn.cursor() as cur:
            # All of a module's statements are reported, also when one of them fails.
            for statement in statements:
                self.journal.record(cur, statement)
            if not statements or self.journal.check_mode:
                return
            for statement in statements:
                try:
                    cur.execute(statement)
                except psycopg2.Error as exc:
                    conn.rollback()
                    raise DdlError(["module %s: %s failed: %s (modules completed before it: %s)" % (
                        mapping["name"], statement.as_string(conn), postgres_problem(exc),
                        ", ".join(self.done) or "none")]) from None
        conn.commit()
        self.done.append(mapping["name"])
