# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``migrator_mode: source_ddl`` with PostgreSQL's own tools: one legacy schema into its module schema.

Per module: ``pg_dump --schema-only`` of the legacy source schema; a scratch
database on the target server with the legacy database's extensions, where
the archive is restored and the schema renamed (everything PostgreSQL links
by OID follows); there the excluded tables are dropped, table overrides
applied, extensions placed and functions that still name the old schema
found (``SET search_path`` rewritten on request); the scratch's schema is
dumped and compared with what the target holds; then, unless in check mode
or already there, restored into the target in one psql transaction. The
scratch database is dropped always. Decisions are ``schema_plan``'s (pure).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import shutil
import tempfile

from ansible_collections.classifiedads.consolidation.plugins.module_utils import schema_plan as sp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    ConnectionFailure,
    connect,
    libpq_environment,
    psycopg2,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import address, quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import postgres_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgclient import beside, locate_dump_programs
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import find_collisions

EXTENSIONS_QUERY = """
SELECT e.extname, n.nspname, e.extrelocatable
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql' ORDER BY e.extname
"""

TABLES_QUERY = """
SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1
"""

# Every role a grant, a default privilege or a policy of the schema names: restoring them needs the role.
ROLES_QUERY = """
WITH nsp AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s),
acls AS (
  SELECT relacl AS acl FROM pg_catalog.pg_class WHERE relnamespace IN (SELECT oid FROM nsp)
  UNION ALL SELECT a.attacl FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace IN (SELECT oid FROM nsp)
  UNION ALL SELECT proacl FROM pg_catalog.pg_proc WHERE pronamespace IN (SELECT oid FROM nsp)
  UNION ALL SELECT typacl FROM pg_catalog.pg_type WHERE typnamespace IN (SELECT oid FROM nsp)
  UNION ALL SELECT defaclacl FROM pg_catalog.pg_default_acl WHERE defaclnamespace IN (SELECT oid FROM nsp)
  UNION ALL SELECT nspacl FROM pg_catalog.pg_namespace WHERE oid IN (SELECT oid FROM nsp)
),
roles AS (
  SELECT (pg_catalog.aclexplode(acl)).grantee AS role FROM acls WHERE acl IS NOT NULL
  UNION SELECT defaclrole FROM pg_catalog.pg_default_acl WHERE defaclnamespace IN (SELECT oid FROM nsp)
  UNION SELECT unnest(p.polroles) FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace IN (SELECT oid FROM nsp)
)
SELECT DISTINCT r.rolname FROM roles JOIN pg_catalog.pg_roles r ON r.oid = roles.role ORDER BY 1
"""

# The legacy schema's own grants to others than its owner (NULL grantee: PUBLIC), as PostgreSQL applies them: a
# database's public schema grants USAGE to PUBLIC from initdb on, which pg_dump never writes out.
SCHEMA_GRANTS_QUERY = """
SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, a.privilege_type,
       a.is_grantable
FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
WHERE n.nspname = %s AND a.grantee <> n.nspowner
ORDER BY 1 NULLS FIRST, 2
"""

ROUTINES_QUERY = """
SELECT p.oid::pg_catalog.regprocedure::text, p.prosrc, p.proconfig, p.proname, p.oid, p.prokind
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %s ORDER BY 1
"""


class ModuleOutcome(dict):
    """One module's part of the schema plan (``schema_plan.json``)."""

    def __init__(self, module):
        dict.__init__(self, module=module["name"], source_database=module["source_database"],
                      source_schema=module["source_schema"], schema=module["schema"], state=None,
                      scratch_database=None, objects={}, extensions=[], excluded_tables=[], table_overrides=[],
                      findings=[], differences=[], problems=[], warnings=[])


class SchemaMove(object):
    """``run()`` moves (in check mode: plans) every module; ``outcomes`` is the schema plan, ``changed`` honest."""

    def __init__(self, source, target, database, modules, journal, extension_schema="public",
                 rewrite_search_path=False, pg_dump_path=None, assume_empty_target=False):
        self.source, self.target, self.database, self.modules = source, target, database, modules
        self.journal = journal
        self.extension_schema = extension_schema
        self.rewrite = rewrite_search_path
        self.pg_dump_path = pg_dump_path
        # A rehearsal's target is dropped and created afresh before its restore: what it holds now does not count.
        self.assume_empty_target = assume_empty_target and journal.check_mode
        self.outcomes = []
        self.changed = False
        self.workdir = None

    # -- the whole run --------------------------------------------------------------------------

    def run(self):
        self.workdir = tempfile.mkdtemp(prefix="cad-source-ddl-")
        try:
            target = self._read_target_server()
            programs = locate_dump_programs(self.pg_dump_path, max(target["version"], self._source_version()),
                                            self.journal)
            table_map = []
            for module in self.modules:
                outcome = ModuleOutcome(module)
                self.outcomes.append(outcome)
                self._plan_module(module, outcome, target, programs, table_map)
            collisions = find_collisions(table_map)
            problems = [problem for outcome in self.outcomes for problem in
                        ["module %s: %s" % (outcome["module"], text) for text in outcome["problems"]]] + collisions
            if problems:
                raise sp.SchemaPlanError(problems)
            for module, outcome in zip(self.modules, self.outcomes):
                if outcome["state"] != "created":
                    continue
                self.changed = True
                if not self.journal.check_mode:
                    self._restore(module, outcome, programs)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _source_version(self):
        versions = []
        for module in self.modules:
            conn = connect(self.source, module["source_database"])
            try:
                versions.append(conn.server_version)
            finally:
                conn.close()
        return max(versions or [0])

    def _read_target_server(self):
        """What the target server and database offer: version, the login role's powers, extensions, schemas."""
        conn = connect(self.target, self.target["maintenance_db"], autocommit=True)
        try:
            with conn.cursor() as cur:
                self.journal.execute(cur, "SELECT rolname, rolsuper, rolcreatedb FROM pg_catalog.pg_roles "
                                          "WHERE rolname = current_user")
                user, superuser, createdb = cur.fetchone()
                self.journal.execute(cur, "SELECT name, trusted FROM pg_catalog.pg_available_extension_versions "
                                          "WHERE version = (SELECT default_version FROM "
                                          "pg_catalog.pg_available_extensions a WHERE a.name = "
                                          "pg_available_extension_versions.name)")
                available = dict(cur.fetchall())
                self.journal.execute(cur, "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype "
                                          "FROM pg_catalog.pg_database WHERE datname = %s", (self.database,))
                row = None if self.assume_empty_target else cur.fetchone()
                version = conn.server_version
        finally:
            conn.close()
        info = dict(version=version, user=user, superuser=superuser, createdb=createdb, available=available,
                    exists=row is not None, locale=row, extensions={}, schemas=set())
        if row is not None:
            conn = connect(self.target, self.database)
            try:
                with conn.cursor() as cur:
                    self.journal.execute(cur, EXTENSIONS_QUERY)
                    info["extensions"] = dict((name, schema) for name, schema, _relocatable in cur.fetchall())
                    self.journal.execute(cur, "SELECT nspname FROM pg_catalog.pg_namespace")
                    info["schemas"] = set(name for (name,) in cur.fetchall())
            finally:
                conn.close()
        return info

    # -- one module: steps 1-3 and the comparison -----------------------------------------------

    def _plan_module(self, module, outcome, target, programs, table_map):
        source_schema, schema = module["source_schema"], module["schema"]
        legacy = self._read_legacy(module, outcome, target)
        if legacy is None:
            return
        for name in legacy["tables"]:
            place = self._destination(module, name)
            if place is not None:
                table_map.append((module["source_database"], name) + place)
        archive = os.path.join(self.workdir, "%d-legacy.dump" % len(self.outcomes))
        rc, _out, err = self._dump(programs, self.source, module["source_database"], [source_schema], archive)
        if rc != 0:
            outcome["problems"].append(sp.dump_problem("source", module["source_database"],
                                                       self.source.get("user") or target["user"], err))
        if not target["superuser"] and not target["createdb"]:
            outcome["problems"].append(sp.createdb_problem(target["user"], address(self.target),
                                                           "role %s has neither CREATEDB nor SUPERUSER"
                                                           % quote_ident(target["user"])))
        # Every extension is created in the scratch database, also one the target already has.
        outcome["problems"] += sp.extension_problems(legacy["extensions"], target["available"], target["superuser"],
                                                     target["user"], source_schema)
        present_roles = self._target_roles(legacy["roles"]) if legacy["roles"] else set()
        missing_roles = [role for role in legacy["roles"] if role not in present_roles]
        if missing_roles:
            outcome["problems"].append(sp.missing_roles_problem(missing_roles))
        if outcome["problems"]:
            return
        scratch = sp.scratch_database_name(self.database, module["name"])
        outcome["scratch_database"] = scratch
        with self._scratch_database(scratch, target["locale"] or legacy["locale"], target, outcome) as created:
            if not created:
                return
            final = self._in_scratch(module, outcome, programs, legacy, archive, scratch)
        if final is None:
            return
        wanted_schemas = final["schemas"]
        wanted = self._script_entries(programs, final["archive"], wanted_schemas)
        missing = [name for name in wanted_schemas if name not in target["schemas"]]
        if not target["exists"] or missing:
            message = ("target database %s does not exist on %s (the schemas role creates it)"
                       % (self.database, address(self.target)) if not target["exists"] else
                       "schema(s) %s do not exist in target database %s (the schemas role creates them)"
                       % (", ".join(quote_ident(name) for name in missing), self.database))
            if self.journal.check_mode:
                if not self.assume_empty_target:
                    outcome["warnings"].append(message + ": everything would be restored")
                outcome["state"] = "created"
            else:
                outcome["problems"].append(message)
            return
        existing_archive = os.path.join(self.workdir, "%d-target.dump" % len(self.outcomes))
        rc, _out, err = self._dump(programs, self.target, self.database, wanted_schemas, existing_archive)
        if rc != 0:
            outcome["problems"].append(sp.dump_problem("target", self.database, target["user"], err))
            return
        existing = self._script_entries(programs, existing_archive, wanted_schemas)
        state, differences = sp.compare_definitions(wanted, existing, schema)
        outcome["state"] = "created" if state == "restore" else state
        outcome["differences"] = differences
        if state == "different":
            outcome["problems"].append(
                "the target already holds objects in %s that differ from what the legacy schema %s restores; user "
                "tables are never altered - empty the schema or drop the differing objects: %s"
                % (", ".join(quote_ident(name) for name in wanted_schemas), quote_ident(source_schema),
                   "; ".join(differences)))
        outcome["restore_list"] = final["list"]
        outcome["archive"] = final["archive"]

    def _destination(self, module, name):
        if name in module["exclude_tables"]:
            return None
        entry = module["tables"].get(name)
        return (entry["schema"], entry["table"]) if entry else (module["schema"], name)

    def _read_legacy(self, module, outcome, target):
        conn = connect(self.source, module["source_database"])
        try:
            with conn.cursor() as cur:
                self.journal.execute(cur, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s",
                                     (module["source_schema"],))
                if cur.fetchone() is None:
                    outcome["problems"].append("schema %s does not exist in source database %s"
                                               % (quote_ident(module["source_schema"]), module["source_database"]))
                    return None
                self.journal.execute(cur, EXTENSIONS_QUERY)
                extensions = [dict(name=name, schema=schema, relocatable=relocatable)
                              for name, schema, relocatable in cur.fetchall()]
                self.journal.execute(cur, TABLES_QUERY, (module["source_schema"],))
                tables = [name for (name,) in cur.fetchall()]
                self.journal.execute(cur, ROLES_QUERY, (module["source_schema"],))
                roles = [name for (name,) in cur.fetchall()]
                self.journal.execute(cur, SCHEMA_GRANTS_QUERY, (module["source_schema"],))
                schema_grants = cur.fetchall()
                self.journal.execute(cur, "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype "
                                          "FROM pg_catalog.pg_database WHERE datname = current_database()")
                locale = cur.fetchone()
        finally:
            conn.close()
        for extension in extensions:
            placement = sp.extension_placement(extension, module["source_schema"], target["extensions"],
                                               self.extension_schema)
            outcome["extensions"].append(dict(
                name=extension["name"], legacy_schema=extension["schema"], schema=placement,
                action="existing" if extension["name"] in target["extensions"] else "create"))
        return dict(extensions=extensions, tables=tables, roles=roles, locale=locale, schema_grants=schema_grants)

    def _target_roles(self, names):
        conn = connect(self.target, self.target["maintenance_db"], autocommit=True)
        try:
            with conn.cursor() as cur:
                self.journal.execute(cur, "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)",
                                     (list(names),))
                return set(name for (name,) in cur.fetchall())
        finally:
            conn.close()

    @contextlib.contextmanager
    def _scratch_database(self, name, locale, target, outcome):
        """Create the scratch database (yielding whether it could), and drop it afterwards, always."""
        admin = connect(self.target, self.target["maintenance_db"], autocommit=True)
        created = False
        try:
            with admin.cursor() as cur:
                # Held by this session until it closes, after the drop: another run's preflight, --check or
                # step 3 on the same target wants the same name and must neither drop nor reuse it meanwhile.
                self.journal.execute(cur, "SELECT pg_catalog.pg_try_advisory_lock(%s, pg_catalog.hashtext(%s))",
                                     (sp.SCRATCH_LOCK_CLASS, name))
                if not cur.fetchone()[0]:
                    outcome["problems"].append(
                        "the scratch database %s is in use by another consolidation run on the target server (its "
                        "preflight, --check or step 3): wait until it ends, then rerun" % quote_ident(name))
                    yield False
                    return
                self.journal.execute(cur, "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM "
                                          "pg_catalog.pg_database WHERE datname = %s", (name,))
                row = cur.fetchone()
                if row is not None and row[0] != sp.SCRATCH_MARK:
                    outcome["problems"].append(
                        "database %s exists on the target server and is not a source_ddl scratch database: rename or "
                        "drop it (source_ddl needs that name for its scratch copy)" % quote_ident(name))
                    yield False
                    return
                if row is not None:  # left by an interrupted run of ours (the lock says no run uses it now)
                    self.journal.execute(cur, sp.drop_scratch_statement(name, admin.server_version))
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} "
                                    "LC_CTYPE {}").format(sql.Identifier(name), *[sql.Literal(v) for v in locale])
                try:
                    self.journal.execute(cur, statement)
                except psycopg2.Error as exc:
                    outcome["problems"].append(sp.createdb_problem(target["user"], address(self.target),
                                                                   postgres_problem(exc)))
                    yield False
                    return
                created = True
                self.journal.execute(cur, sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(sp.SCRATCH_MARK)))
            yield True
        finally:
            if created:
                with admin.cursor() as cur:
                    self.journal.execute(cur, sp.drop_scratch_statement(name, admin.server_version))
            admin.close()

    def _in_scratch(self, module, outcome, programs, legacy, archive, scratch):
        """Steps 2-3 in the scratch database; returns the final archive, its restore list and schemas, or None."""
        source_schema, schema = module["source_schema"], module["schema"]
        conn = connect(self.target, scratch)
        try:
            with conn.cursor() as cur:
                # A schema of our own, even for public: initdb's public carries privileges pg_dump takes as
                # given (pg_init_privs) and would never write out for the renamed schema.
                if source_schema == "public":
                    self.journal.execute(cur, "DROP SCHEMA public")
                self.journal.execute(cur, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(source_schema)))
                for extension in legacy["extensions"]:
                    self.journal.execute(cur, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(extension["schema"])))
                    self.journal.execute(cur, sql.SQL("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}").format(
                        sql.Identifier(extension["name"]), sql.Identifier(extension["schema"])))
            conn.commit()
            if not self._restore_script(programs, archive, [source_schema], self.target, scratch, [], outcome,
                                        "the scratch database %s" % quote_ident(scratch), reads_only=True):
                return None
            with conn.cursor() as cur:
                for statement in sp.schema_grant_statements(source_schema, legacy["schema_grants"]):
                    self.journal.execute(cur, statement)
                if source_schema != schema:
                    self.journal.execute(cur, sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                        sql.Identifier(source_schema), sql.Identifier(schema)))
                self._place_extensions(cur, module, outcome, legacy)
                self._drop_excluded(cur, conn, module, outcome, legacy)
                schemas = self._apply_overrides(cur, module, outcome, legacy)
                self._routines(cur, module, outcome)
            conn.commit()
        except psycopg2.Error as exc:
            conn.rollback()
            outcome["problems"].append("preparing the schema in the scratch database %s failed: %s"
                                       % (quote_ident(scratch), postgres_problem(exc)))
            return None
        finally:
            conn.close()
        if outcome["problems"]:
            return None
        final = os.path.join(self.workdir, "%d-scratch.dump" % len(self.outcomes))
        rc, _out, err = self._dump(programs, self.target, scratch, schemas, final)
        if rc != 0:
            outcome["problems"].append(sp.dump_problem("scratch", scratch, self.target.get("user"), err))
            return None
        entries = self._toc(programs, final)
        outcome["objects"] = sp.count_kinds(entries, schemas)
        return dict(archive=final, schemas=schemas, list=sp.restore_list(entries, schemas))

    def _place_extensions(self, cur, module, outcome, legacy):
        relocatable = dict((e["name"], e["relocatable"]) for e in legacy["extensions"])
        for extension in outcome["extensions"]:
            now = module["schema"] if extension["legacy_schema"] == module["source_schema"] else (
                extension["legacy_schema"])
            if extension["schema"] == now:
                continue
            if not relocatable[extension["name"]]:
                outcome["problems"].append(
                    "extension %s is installed in schema %s of the legacy database and is not relocatable, so it "
                    "cannot land in schema %s: install it in the target database in schema %s beforehand, or set "
                    "extension_schema to %s" % (quote_ident(extension["name"]), quote_ident(extension["legacy_schema"]),
                                                quote_ident(extension["schema"]), quote_ident(now), quote_ident(now)))
                continue
            self.journal.execute(cur, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(extension["schema"])))
            self.journal.execute(cur, sql.SQL("ALTER EXTENSION {} SET SCHEMA {}").format(
                sql.Identifier(extension["name"]), sql.Identifier(extension["schema"])))

    def _drop_excluded(self, cur, conn, module, outcome, legacy):
        for table in module["exclude_tables"]:
            if table not in legacy["tables"]:
                continue
            del conn.notices[:]
            self.journal.execute(cur, sql.SQL("DROP TABLE {} CASCADE").format(
                sql.Identifier(module["schema"], table)))
            took = sp.cascaded_objects(conn.notices)
            outcome["excluded_tables"].append(dict(table=table, dropped_with_it=took))
            if took:
                outcome["warnings"].append("excluded table %s takes with it: %s"
                                           % (quote_ident(table), "; ".join(took)))

    def _apply_overrides(self, cur, module, outcome, legacy):
        """Table overrides applied in the scratch database; returns the schemas the final dump covers."""
        schemas = [module["schema"]]
        for source_table, entry in sorted(module["tables"].items()):
            if source_table not in legacy["tables"] or (entry["schema"], entry["table"]) == (
                    module["schema"], source_table):
                continue
            if entry["table"] != source_table:
                self.journal.execute(cur, sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    sql.Identifier(module["schema"], source_table), sql.Identifier(entry["table"])))
            if entry["schema"] != module["schema"]:
                self.journal.execute(cur, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(entry["schema"])))
                self.journal.execute(cur, sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(module["schema"], entry["table"]), sql.Identifier(entry["schema"])))
                if entry["schema"] not in schemas:
                    schemas.append(entry["schema"])
            outcome["table_overrides"].append(dict(source_table=source_table, schema=entry["schema"],
                                                   table=entry["table"]))
        return schemas

    def _routines(self, cur, module, outcome):
        if module["source_schema"] == module["schema"]:
            return
        self.journal.execute(cur, ROUTINES_QUERY, (module["schema"],))
        rows = cur.fetchall()
        routines = [dict(signature=signature, body=body, proconfig=config)
                    for signature, body, config, _name, _args, _kind in rows]
        findings, rewrites = sp.routine_findings(routines, module["source_schema"], module["schema"], self.rewrite)
        outcome["findings"] += findings
        oids = dict((signature, oid) for signature, _body, _config, _name, oid, _kind in rows)
        for signature, path in rewrites:
            # regprocedure names the routine with its argument types, each part quoted by the server itself.
            self.journal.execute(cur, "SELECT pg_catalog.format('ALTER ROUTINE %%s SET search_path TO %%s', "
                                      "%s::pg_catalog.oid::pg_catalog.regprocedure, pg_catalog.array_to_string("
                                      "ARRAY(SELECT pg_catalog.quote_ident(item) FROM pg_catalog.unnest(%s::text[]) "
                                      "AS item), ', '))", (oids[signature], list(path)))
            self.journal.execute(cur, cur.fetchone()[0])

    # -- step 4 ---------------------------------------------------------------------------------

    def _restore(self, module, outcome, programs):
        prologue = []
        conn = connect(self.target, self.database)
        try:
            for extension in outcome["extensions"]:
                if extension["action"] != "create":
                    continue
                prologue.append(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(extension["schema"])).as_string(conn))
                prologue.append(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}").format(
                    sql.Identifier(extension["name"]), sql.Identifier(extension["schema"])).as_string(conn))
        finally:
            conn.close()
        ok = self._restore_script(programs, outcome["archive"], None, self.target, self.database, prologue, outcome,
                                  "target database %s" % self.database, reads_only=False,
                                  restore_list=outcome["restore_list"])
        if not ok:
            raise sp.SchemaPlanError(["module %s: %s (modules restored before it: %s)" % (
                module["name"], outcome["problems"][-1],
                ", ".join(o["module"] for o in self.outcomes if o.get("restored")) or "none")])
        outcome["restored"] = True

    # -- client programs ------------------------------------------------------------------------

    def _dump(self, programs, endpoint, database, schemas, path):
        argv = [programs.pg_dump, "--schema-only", "--format=custom", "--no-password", "--file=" + path]
        argv += ["--schema=" + sp.name_pattern(name) for name in schemas]
        with libpq_environment(endpoint, database) as env:
            return self.journal.run(argv, env)

    def _toc(self, programs, archive):
        rc, out, err = self.journal.run([programs.pg_restore, "--list", archive])
        if rc != 0:
            raise sp.SchemaPlanError(["pg_restore --list cannot read %s: %s" % (archive, err.strip())])
        return sp.parse_toc(out)

    def _script(self, programs, archive, restore_list, path):
        list_path = path + ".list"
        with open(list_path, "w") as handle:
            handle.write(restore_list)
        rc, _out, err = self.journal.run([programs.pg_restore, "--no-owner", "--use-list=" + list_path,
                                          "--file=" + path, archive])
        if rc != 0:
            raise sp.SchemaPlanError(["pg_restore cannot write the script of %s: %s" % (archive, err.strip())])

    def _script_entries(self, programs, archive, schemas):
        path = archive + ".sql"
        self._script(programs, archive, sp.restore_list(self._toc(programs, archive), schemas), path)
        with open(path) as handle:
            return sp.split_script(handle.read())

    def _restore_script(self, programs, archive, schemas, endpoint, database, prologue, outcome, where, reads_only,
                        restore_list=None):
        """Restore ``archive`` (its schemas' own entries left out) into ``database`` in one psql transaction."""
        if restore_list is None:
            restore_list = sp.restore_list(self._toc(programs, archive), schemas)
        script = archive + ".restore.sql"
        self._script(programs, archive, restore_list, script)
        argv = [beside(programs.pg_dump, "psql"), "--no-psqlrc", "--quiet", "--no-password", "--single-transaction",
                "--set=ON_ERROR_STOP=1"]
        if prologue:
            prologue_path = archive + ".prologue.sql"
            with open(prologue_path, "w") as handle:
                handle.write("".join(statement + ";\n" for statement in prologue))
            argv.append("--file=" + prologue_path)
        argv.append("--file=" + script)
        with libpq_environment(endpoint, database) as env:
            rc, _out, err = (self.journal.run if reads_only else self.journal.run_change)(argv, env)
        if rc != 0:
            outcome["problems"].append(sp.restore_problem(where, err))
            return False
        return True


def run_schema_move(params, modules, journal):
    """Everything the source_ddl module does; returns ``(changed, outcomes)``, raises SchemaPlanError with the
    outcomes so far in its details."""
    move = SchemaMove(params["source"], params["target"], params["target_database"], modules, journal,
                      extension_schema=params.get("extension_schema") or "public",
                      rewrite_search_path=bool(params.get("rewrite_search_path")),
                      pg_dump_path=params.get("pg_dump_path"),
                      assume_empty_target=bool(params.get("assume_empty_target")))
    try:
        move.run()
    except sp.SchemaPlanError as exc:
        exc.details["modules"] = public_outcomes(move.outcomes)
        raise
    except (psycopg2.Error, ConnectionFailure) as exc:
        raise sp.SchemaPlanError([postgres_problem(exc) if isinstance(exc, psycopg2.Error) else str(exc)],
                                 modules=public_outcomes(move.outcomes)) from None
    return move.changed, public_outcomes(move.outcomes)


def public_outcomes(outcomes):
    """The schema plan as reported: without the working files."""
    hidden = ("archive", "restore_list", "restored")
    return [dict((key, value) for key, value in outcome.items() if key not in hidden) for outcome in outcomes]
