# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan step 2: the consolidated database and one schema per module.

``schema_actions`` is the pure decision; ``prepare_target`` reads the target
server, creates what is missing (in check mode only records the statements)
and reports what it did.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, psycopg2, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import (
    ConsolidationError,
    postgres_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import identifier_problem, schema_problem


class SchemaError(ConsolidationError):
    """The target database or its schemas could not be prepared."""


def name_problems(database, schemas):
    """Why the database or a schema name cannot be used; empty when all can."""
    problems = [identifier_problem("target database", database)]
    problems += [schema_problem(name) for name in schemas]
    return [problem for problem in problems if problem]


def schema_actions(wanted, existing, owner):
    """Pure: what each wanted schema needs, given ``existing`` {name: owner}.

    An existing schema is left as it is, whoever owns it (``public`` belongs to
    pg_database_owner on PostgreSQL 15); preflight has already checked that
    the login role may work in it.
    """
    return [{"name": name, "owner": existing.get(name, owner),
             "action": "exists" if name in existing else "created"} for name in wanted]


def prepare_target(target, database, schemas, owner, encoding, journal):
    """Create ``database`` (owned by ``owner``, default the login role) and the missing ``schemas``.

    Returns {"database_created", "schemas"}; in check mode (the journal's) nothing
    changes and a database that would be created is not read.
    """
    admin = conn = None
    try:
        admin = connect(target, target["maintenance_db"], autocommit=True)
        with admin.cursor() as cur:
            cur.execute("SELECT current_user")
            owner = owner or cur.fetchone()[0]
            cur.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,))
            database_created = cur.fetchone() is None
            if database_created:
                journal.change(cur, sql.SQL("CREATE DATABASE {} OWNER {} ENCODING {} TEMPLATE template0").format(
                    sql.Identifier(database), sql.Identifier(owner), sql.Literal(encoding)))
        existing = {}
        if not (database_created and journal.check_mode):
            conn = connect(target, database)
            with conn.cursor() as cur:
                cur.execute("SELECT nspname, pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace")
                existing = dict(cur.fetchall())
        actions = schema_actions(schemas, existing, owner)
        # Rendered on the maintenance connection, which exists in check mode too.
        with (conn or admin).cursor() as cur:
            for action in actions:
                if action["action"] == "created":
                    journal.change(cur, sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                        sql.Identifier(action["name"]), sql.Identifier(action["owner"])))
        if conn is not None:
            conn.commit()
    except psycopg2.Error as exc:
        raise SchemaError("preparing %s failed: %s" % (database, postgres_problem(exc))) from None
    finally:
        for connection in (conn, admin):
            if connection is not None:
                connection.close()
    return {"database_created": database_created, "schemas": actions}
