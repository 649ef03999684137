"""Stand-in for ClassifiedAds.Migrator after the schema-per-module change (one database, one schema per module).

What the real Migrator does, and so does this one:

1. Read the shared connection string ``ConnectionStrings:Default`` (``configuration.GetConnectionString``).
2. For each DbContext, in the Migrator's order AuditLog, Configuration, Identity, Notification,
   Product, Storage, run EF Core's ``Database.Migrate()``:

   * create the database when it does not exist (Npgsql's database creator connects to the
     ``postgres`` maintenance database, falling back to ``template1``, and runs ``CREATE DATABASE``);
   * create ``public."__EFMigrationsHistory"`` if needed (``HasDefaultSchema`` does not move it);
   * in one transaction per DbContext that holds ``LOCK TABLE public."__EFMigrationsHistory" IN ACCESS
     EXCLUSIVE MODE`` (Npgsql 9 and later), apply each migration whose id is not recorded and record
     it with ProductVersion 10.0.0. An initial migration creates the module's schema, its tables
     (``devkit/sql/<schema>.sql``) and its HasData seed rows; ``20260201100837_InitialIdentity``
     makes ``UserClaims.UserId`` and ``RoleClaims.RoleId`` NOT NULL (``sql/migrations/``).

3. Run DbUp against the same database: journal ``public.schemaversions``, and the one script
   ``0001-CreateTables.sql`` (``CacheEntries``) unless it is journaled already. DbUp's objects land in
   ``public`` (the connection's default schema).

A second run changes nothing and says so. Exit status: 0 on success (also when there was nothing to
do), 1 when the database cannot be reached or a migration fails, 2 when the configuration is
missing or invalid. Errors are one line on stderr; the password is never printed.

Configuration, with .NET's precedence (``Host.CreateDefaultBuilder``: later sources win):

1. ``--appsettings PATH``: ``ConnectionStrings:Default`` in that JSON file (comments and trailing
   commas allowed, keys case-insensitive, as .NET's JSON provider reads them), then in
   ``<name>.<environment>.json`` beside it if present, the environment being ``DOTNET_ENVIRONMENT``
   (default ``Production``);
2. the environment variable ``ConnectionStrings__Default`` (``__`` stands for ``:``; the name is
   matched case-insensitively), which overrides the files.

The value is an Npgsql connection string: ``Host=...;Port=...;Database=...;Username=...;Password=...``
with case-insensitive keywords, Npgsql's synonyms (``Server``, ``DB``, ``User ID``/``UserId``/``UID``,
``PWD``/``PSW``), values optionally quoted with ``'`` or ``"`` (a doubled quote stands for itself),
and ``Passfile``, ``SSL Mode``, ``Timeout`` (connect timeout, default 15 s) and ``Application Name``
honoured. Other Npgsql keywords (pooling, command timeout, ...) are accepted and ignored; unknown
ones are rejected as Npgsql does ("Keyword not supported").
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import psycopg2
from psycopg2 import errors, sql

from devkit import ddl

PROG = "classifiedads-migrator"
CONNECTION_STRING_KEY = "ConnectionStrings:Default"
ENVIRONMENT_VARIABLE = "ConnectionStrings__Default"
MAINTENANCE_DATABASES = ("postgres", "template1")
MIGRATIONS_DIR = ddl.SQL_DIR / "migrations"


class MigratorError(Exception):
    """The migration failed; the message is one line and holds no password."""

    exit_code = 1


class ConfigurationError(MigratorError):
    """The connection string is missing or invalid."""

    exit_code = 2


# -- connection string ---------------------------------------------------------------------------

# Npgsql keywords and synonyms, compared without case and spaces.
_KEYWORDS = {
    "host": "Host", "server": "Host",
    "port": "Port",
    "database": "Database", "db": "Database",
    "username": "Username", "userid": "Username", "uid": "Username",
    "password": "Password", "pwd": "Password", "psw": "Password",
    "passfile": "Passfile",
    "sslmode": "SSL Mode",
    "rootcertificate": "Root Certificate",
    "sslcertificate": "SSL Certificate",
    "sslkey": "SSL Key",
    "sslpassword": "SSL Password",
    "timeout": "Timeout",
    "applicationname": "Application Name",
}
# Npgsql keywords that change nothing for a one-shot migration run.
_IGNORED_KEYWORDS = {
    "commandtimeout", "pooling", "minpoolsize", "minimumpoolsize", "maxpoolsize", "maximumpoolsize",
    "connectionidlelifetime", "connectionpruninginterval", "connectionlifetime", "includeerrordetail",
    "includeerrordetails", "trustservercertificate", "keepalive", "tcpkeepalive", "searchpath", "encoding",
    "clientencoding", "timezone", "enlist", "multiplexing", "maxautoprepare", "autoprepareminusages",
    "readbuffersize", "writebuffersize", "socketreceivebuffersize", "socketsendbuffersize", "noresetonclose",
    "servercompatibilitymode", "logparameters", "targetsessionattributes", "loadbalancehosts",
    "hostrecheckseconds", "cancellationtimeout", "internalcommandtimeout", "persistsecurityinfo",
}
_SSL_MODES = {"disable": "disable", "allow": "allow", "prefer": "prefer", "require": "require",
              "verifyca": "verify-ca", "verifyfull": "verify-full"}


def parse_connection_string(text: str) -> dict[str, str]:
    """Npgsql connection string → ``{canonical keyword: value}`` (the last of repeated keywords wins)."""
    settings: dict[str, str] = {}
    pos, end = 0, len(text)
    while True:
        while pos < end and (text[pos].isspace() or text[pos] == ";"):
            pos += 1
        if pos >= end:
            return settings
        key, pos = _read_keyword(text, pos)
        value, pos = _read_value(text, pos, key)
        normalized = key.lower().replace(" ", "")
        if normalized in _KEYWORDS:
            settings[_KEYWORDS[normalized]] = value
        elif normalized not in _IGNORED_KEYWORDS:
            raise ConfigurationError(f"connection string: Keyword not supported: '{key}'")


def _read_keyword(text: str, pos: int) -> tuple[str, int]:
    chars = []
    while pos < len(text):
        char = text[pos]
        if char == "=":
            if text.startswith("==", pos):  # "==" is a literal "=" in a keyword
                chars.append("=")
                pos += 2
                continue
            key = "".join(chars).strip()
            if not key:
                raise ConfigurationError("connection string: a value has no keyword")
            return key, pos + 1
        if char == ";":
            break
        chars.append(char)
        pos += 1
    raise ConfigurationError(f"connection string: '{''.join(chars).strip()}' is not a keyword=value pair")


def _read_value(text: str, pos: int, key: str) -> tuple[str, int]:
    end = len(text)
    while pos < end and text[pos] in " \t":
        pos += 1
    if pos < end and text[pos] in "\"'":
        quote, chars = text[pos], []
        pos += 1
        while True:
            if pos >= end:
                raise ConfigurationError(f"connection string: the quoted value of '{key}' is not closed")
            if text[pos] == quote:
                if text.startswith(quote * 2, pos):
                    chars.append(quote)
                    pos += 2
                    continue
                pos += 1
                break
            chars.append(text[pos])
            pos += 1
        while pos < end and text[pos].isspace():
            pos += 1
        if pos < end and text[pos] != ";":
            raise ConfigurationError(f"connection string: unexpected text after the quoted value of '{key}'")
        return "".join(chars), pos
    stop = text.find(";", pos)
    stop = end if stop < 0 else stop
    return text[pos:stop].strip(), stop


def connect_kwargs(settings: Mapping[str, str]) -> dict:
    """psycopg2.connect() arguments for parsed connection string settings."""
    host = settings.get("Host")
    if not host:
        raise ConfigurationError("connection string: Host is missing")
    database = settings.get("Database") or settings.get("Username")
    if not database:
        raise ConfigurationError("connection string: Database is missing")
    kwargs = {"host": host, "dbname": database, "application_name": settings.get("Application Name", PROG)}
    if settings.get("Port"):
        kwargs["port"] = _integer(settings, "Port", 1, 65535)
    kwargs["connect_timeout"] = _integer(settings, "Timeout", 0, 1024) if settings.get("Timeout") else 15
    for keyword, argument in (("Username", "user"), ("Password", "password"), ("Passfile", "passfile"),
                              ("Root Certificate", "sslrootcert"), ("SSL Certificate", "sslcert"),
                              ("SSL Key", "sslkey"), ("SSL Password", "sslpassword")):
        if settings.get(keyword):
            kwargs[argument] = settings[keyword]
    if settings.get("SSL Mode"):
        mode = _SSL_MODES.get(settings["SSL Mode"].lower().replace("-", "").replace(" ", ""))
        if mode is None:
            raise ConfigurationError(f"connection string: SSL Mode '{settings['SSL Mode']}' is not one of "
                                     "Disable, Allow, Prefer, Require, VerifyCA, VerifyFull")
        kwargs["sslmode"] = mode
    return kwargs


def _integer(settings: Mapping[str, str], keyword: str, low: int, high: int) -> int:
    value = settings[keyword]
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigurationError(f"connection string: {keyword} must be a number from {low} to {high}, not '{value}'")
    return int(value)


def describe(kwargs: Mapping) -> str:
    """Where a connection goes, for the log: host, port, database and user, never the password."""
    port = kwargs.get("port", 5432)
    return f'{kwargs["host"]}:{port} database "{kwargs["dbname"]}" as user "{kwargs.get("user", "(default)")}"'


# -- configuration sources -------------------------------------------------------------------------

def resolve_connection_string(appsettings: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """``(connection string, where it came from)``; environment variables override JSON files, as in .NET."""
    value, source = None, None
    if appsettings is not None:
        for path in _settings_files(Path(appsettings), environ):
            found = _flatten(_read_json(path)).get(CONNECTION_STRING_KEY.lower())
            if found is not None:
                value, source = found, f"{CONNECTION_STRING_KEY} in {path}"
    wanted = CONNECTION_STRING_KEY.lower()
    names = sorted(name for name in environ if name.replace("__", ":").lower() == wanted)
    if names:
        name = ENVIRONMENT_VARIABLE if ENVIRONMENT_VARIABLE in names else names[-1]
        value, source = environ[name], f"environment variable {name}"
    if value is None:
        raise ConfigurationError(f"no connection string: set the environment variable {ENVIRONMENT_VARIABLE} or "
                                 f"pass --appsettings with a file that sets {CONNECTION_STRING_KEY}")
    if not value.strip():
        raise ConfigurationError(f"the connection string ({source}) is empty")
    return value, source


def _settings_files(path: Path, environ: Mapping[str, str]) -> list[Path]:
    if not path.is_file():
        raise ConfigurationError(f"settings file {path} does not exist")
    environment = environ.get("DOTNET_ENVIRONMENT") or "Production"
    overlay = path.with_name(f"{path.stem}.{environment}{path.suffix}")
    return [path, overlay] if overlay.is_file() else [path]


def _read_json(path: Path):
    try:
        return json.loads(_strip_json_extensions(path.read_text(encoding="utf-8-sig")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read settings file {path}: {exc}") from exc


def _strip_json_extensions(text: str) -> str:
    """Drop the // and /* */ comments and trailing commas that .NET's JSON configuration accepts."""
    out, pos, end = [], 0, len(text)
    while pos < end:
        char = text[pos]
        if char == '"':
            stop = pos + 1
            while stop < end and text[stop] != '"':
                stop += 2 if text[stop] == "\\" else 1
            out.append(text[pos:stop + 1])
            pos = stop + 1
        elif text.startswith("//", pos):
            stop = text.find("\n", pos)
            pos = end if stop < 0 else stop
        elif text.startswith("/*", pos):
            stop = text.find("*/", pos + 2)
            pos = end if stop < 0 else stop + 2
        elif char == ",":
            rest = pos + 1
            while rest < end and text[rest].isspace():
                rest += 1
            if rest < end and text[rest] in "}]":
                pos += 1
                continue
            out.append(char)
            pos += 1
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def _flatten(node, prefix: str = "") -> dict[str, str | None]:
    """.NET configuration keys (``a:b``, lower-cased) → values; a JSON null reads as an empty string."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = ((str(index), value) for index, value in enumerate(node))
    else:
        if node is None:
            return {prefix: ""}
        return {prefix: node if isinstance(node, str) else json.dumps(node)}
    flat: dict[str, str | None] = {}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}:{key}".lower() if prefix else str(key).lower()))
    return flat


# -- migrating ------------------------------------------------------------------------------------

def migrate(kwargs: dict, log=print) -> dict:
    """Migrate the database ``kwargs`` points at; return ``{"migrations": [...], "scripts": [...]}`` applied."""
    conn = _connect_or_create(kwargs, log)
    applied = {"migrations": [], "scripts": []}
    try:
        with conn, conn.cursor() as cur:
            ddl.create_history_table(cur)
        for module in ddl.MODULES:
            applied["migrations"] += _migrate_module(conn, module, log)
        applied["scripts"] += _run_dbup(conn, log)
    except psycopg2.Error as exc:
        raise MigratorError(f"migration failed: {_one_line(exc)}") from exc
    finally:
        conn.close()
    return applied


def _migrate_module(conn, module: ddl.Module, log) -> list[str]:
    context = f"{module.name}DbContext"
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("LOCK TABLE public.{} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(ddl.HISTORY_TABLE)))
        cur.execute(sql.SQL('SELECT "MigrationId" FROM public.{} WHERE "MigrationId" = ANY(%s)').format(
            sql.Identifier(ddl.HISTORY_TABLE)), (list(module.migrations),))
        recorded = {migration_id for (migration_id,) in cur.fetchall()}
        pending = [migration_id for migration_id in module.migrations if migration_id not in recorded]
        if not pending:
            log(f"[{context}] No migrations were applied. The database is already up to date.")
        for migration_id in pending:
            log(f"[{context}] Applying migration {migration_id}")
            if migration_id == module.migrations[0]:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(module.schema)))
                ddl.run_sections(cur, module, module.schema, ddl.SECTIONS)
            else:
                ddl.set_search_path(cur, module.schema)
                cur.execute((MIGRATIONS_DIR / f"{migration_id}.sql").read_text())
            ddl.insert_history_row(cur, migration_id)
    return pending


def _run_dbup(conn, log) -> list[str]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{ddl.DBUP_JOURNAL_TABLE}",))
        (journal_exists,) = cur.fetchone()
        executed = set()
        if journal_exists:
            cur.execute(sql.SQL("SELECT scriptname FROM public.{}").format(sql.Identifier(ddl.DBUP_JOURNAL_TABLE)))
            executed = {name for (name,) in cur.fetchall()}
        if ddl.DBUP_SCRIPT_NAME in executed:
            log("[DbUp] No new scripts need to be executed - completing.")
            return []
        if not journal_exists:
            log(f'[DbUp] Creating the "{ddl.DBUP_JOURNAL_TABLE}" table')
            ddl.create_dbup_journal(cur)
        log(f"[DbUp] Executing Database Server script '{ddl.DBUP_SCRIPT_NAME}'")
        ddl.run_dbup_script(cur)
        # DbUp journals DateTime.Now: local time in a timestamp without time zone.
        cur.execute(sql.SQL("INSERT INTO public.{} (scriptname, applied) VALUES (%s, %s)").format(
            sql.Identifier(ddl.DBUP_JOURNAL_TABLE)), (ddl.DBUP_SCRIPT_NAME, datetime.datetime.now()))
    return [ddl.DBUP_SCRIPT_NAME]


def _connect_or_create(kwargs: dict, log):
    try:
        return psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        if f'database "{kwargs["dbname"]}" does not exist' not in str(exc):
            raise MigratorError(f"cannot connect to {describe(kwargs)}: {_one_line(exc)}") from exc
    log(f'Creating database "{kwargs["dbname"]}"')
    _create_database(kwargs)
    try:
        return psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        raise MigratorError(f"cannot connect to {describe(kwargs)}: {_one_line(exc)}") from exc


def _create_database(kwargs: dict) -> None:
    last_error = None
    for maintenance in MAINTENANCE_DATABASES:
        try:
            conn = psycopg2.connect(**{**kwargs, "dbname": maintenance})
        except psycopg2.OperationalError as exc:
            last_error = exc
            continue
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(kwargs["dbname"])))
        except errors.DuplicateDatabase:
            pass  # another migrator created it meanwhile
        except psycopg2.Error as exc:
            raise MigratorError(f'cannot create database "{kwargs["dbname"]}": {_one_line(exc)}') from exc
        finally:
            conn.close()
        return
    raise MigratorError(f'cannot create database "{kwargs["dbname"]}": no maintenance database reachable: '
                        f"{_one_line(last_error)}")


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


# -- command line -----------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stand-in for ClassifiedAds.Migrator after the schema-per-module change: applies the six "
                    "modules' EF Core migrations (one schema each) and the DbUp script to the shared database.",
        epilog=f"The connection string is {CONNECTION_STRING_KEY} from --appsettings (and its "
               f"<name>.<DOTNET_ENVIRONMENT>.json overlay), overridden by the environment variable "
               f"{ENVIRONMENT_VARIABLE}, as .NET's configuration does. Exit status: 0 done or nothing to do, "
               "1 connection or migration failure, 2 missing or invalid configuration.",
    )
    parser.add_argument("--appsettings", metavar="PATH", help="appsettings.json to read ConnectionStrings:Default from")
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    log = functools.partial(print, flush=True)
    password = None
    try:
        text, source = resolve_connection_string(args.appsettings, environ)
        kwargs = connect_kwargs(parse_connection_string(text))
        password = kwargs.get("password")
        log(f"Migrating {describe(kwargs)} (connection string from {source})")
        applied = migrate(kwargs, log)
    except MigratorError as exc:
        message = str(exc)
        if password:
            message = message.replace(password, "********")
        print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
        return exc.exit_code
    migrations, scripts = len(applied["migrations"]), len(applied["scripts"])
    if migrations or scripts:
        log(f"Done: applied {migrations} migration(s) and {scripts} DbUp script(s).")
    else:
        log("Done: nothing to apply, the database is already up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
