"""The six ClassifiedAds modules and the SQL that creates their tables, shared by the legacy fixture
builder (:mod:`devkit.legacy`) and the stand-in migrator (:mod:`devkit.migrator`).

Each module's tables are written once, in ``sql/<schema>.sql``, without a schema: :func:`run_sections`
sets ``search_path`` to ``public`` for a legacy database or to the module's schema for the
consolidated one. The files are split by ``-- @section <name>`` lines into :data:`SECTIONS`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

from psycopg2 import sql

SQL_DIR = Path(__file__).with_name("sql")
SECTIONS = ("tables", "keys", "seed", "indexes")

EF_PRODUCT_VERSION = "10.0.0"
HISTORY_TABLE = "__EFMigrationsHistory"
DBUP_JOURNAL_TABLE = "schemaversions"
DBUP_SCRIPT_FILE = SQL_DIR / "dbup" / "0001-CreateTables.sql"
# DbUp journals a script under its embedded-resource name.
DBUP_SCRIPT_NAME = "ClassifiedAds.Migrator.DbUp.PostgresqlDistributedCache.0001-CreateTables.sql"


@dataclasses.dataclass(frozen=True)
class Module:
    """One ClassifiedAds module: its DbContext's tables and where they live before and after."""

    name: str  # "Product": legacy database <prefix>_<name>
    schema: str  # "product": its schema in the consolidated database, and its sql/<schema>.sql
    legacy_migration_id: str  # placeholder history row of the legacy database
    migrations: tuple[str, ...]  # the consolidated migrator's EF migrations, oldest first

    def legacy_database(self, prefix: str = "ClassifiedAds") -> str:
        return f"{prefix}_{self.name}"


# In the order ClassifiedAds.Migrator migrates them (MigrateAuditLogDb, ..., MigrateStorageDb).
# The legacy migration ids are unknown (they were generated locally, never committed); the
# placeholders 2025122810000N_Init are distinct per module, as the real ids would be.
MODULES = (
    Module("AuditLog", "auditlog", "20251228100005_Init", ("20260201102457_InitialAuditLog",)),
    Module("Configuration", "configuration", "20251228100006_Init", ("20260201104426_InitialConfiguration",)),
    Module("Identity", "identity", "20251228100002_Init",
           ("20260103103431_IdentityInitial", "20260201100837_InitialIdentity")),
    Module("Notification", "notification", "20251228100004_Init", ("20260201104436_InitialNotification",)),
    Module("Product", "product", "20251228100001_Init", ("20260201104447_InitialProduct",)),
    Module("Storage", "storage", "20251228100003_Init", ("20260201101114_InitialStorage",)),
)
MODULES_BY_SCHEMA = {module.schema: module for module in MODULES}

_SECTION_LINE = re.compile(r"^-- @section (\w+)\s*$", re.MULTILINE)


@functools.cache
def module_sections(schema: str) -> dict[str, str]:
    """The ``-- @section`` parts of ``sql/<schema>.sql``, by name."""
    text = (SQL_DIR / f"{schema}.sql").read_text()
    parts = _SECTION_LINE.split(text)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    if tuple(sections) != SECTIONS:
        raise ValueError(f"{schema}.sql must have the sections {SECTIONS} in that order, found {tuple(sections)}")
    return sections


def set_search_path(cur, schema: str) -> None:
    """Point unqualified names at ``schema`` for the rest of the current transaction."""
    cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))


def run_sections(cur, module: Module, schema: str, sections: tuple[str, ...]) -> None:
    """Execute the named sections of the module's SQL with ``schema`` as the search_path."""
    set_search_path(cur, schema)
    for name in sections:
        body = module_sections(module.schema)[name]
        if _has_statement(body):
            cur.execute(body)


def _has_statement(body: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("--") for line in body.splitlines())


def create_history_table(cur) -> None:
    """``public."__EFMigrationsHistory"`` as Npgsql's HistoryRepository creates it."""
    cur.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS public.{} ("
        ' "MigrationId" character varying(150) NOT NULL,'
        ' "ProductVersion" character varying(32) NOT NULL,'
        ' CONSTRAINT "PK___EFMigrationsHistory" PRIMARY KEY ("MigrationId"))'
    ).format(sql.Identifier(HISTORY_TABLE)))


def insert_history_row(cur, migration_id: str) -> None:
    cur.execute(
        sql.SQL('INSERT INTO public.{} ("MigrationId", "ProductVersion") VALUES (%s, %s)').format(
            sql.Identifier(HISTORY_TABLE)),
        (migration_id, EF_PRODUCT_VERSION),
    )


def create_dbup_journal(cur) -> None:
    """``public.schemaversions`` as DbUp's PostgresqlTableJournal creates it."""
    cur.execute(sql.SQL(
        "CREATE TABLE public.{} ("
        " schemaversionsid serial NOT NULL,"
        " scriptname character varying(255) NOT NULL,"
        " applied timestamp without time zone NOT NULL,"
        ' CONSTRAINT "PK_schemaversions_Id" PRIMARY KEY (schemaversionsid))'
    ).format(sql.Identifier(DBUP_JOURNAL_TABLE)))


def run_dbup_script(cur) -> None:
    """The application's one DbUp script, in ``public`` (DbUp's connection has the default search_path)."""
    set_search_path(cur, "public")
    cur.execute(DBUP_SCRIPT_FILE.read_text())
