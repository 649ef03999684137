# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``migrator_mode: source_ddl``, the decisions: pure functions of plain data, unit-tested.

The work (``schema_move.py``) is PostgreSQL's own: pg_dump the legacy schema,
restore it into a scratch database, ``ALTER SCHEMA ... RENAME`` there, dump
the renamed schema and restore it into the target in one transaction. What
is decided here: the scratch database's name, which archive entries are
restored, what the target already holds compared with what the restore
would create, where extensions land, what cannot follow a rename (function
bodies and ``SET search_path`` clauses naming the old schema), and the cause
and fix of a client program's error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

MAX_IDENTIFIER_BYTES = 63
SCRATCH_MARK = "classifiedads.consolidation source_ddl scratch database"
PG_NAMESPACE_OID = "2615"  # pg_catalog.pg_namespace: the catalog of a SCHEMA entry in a TOC

# pg_restore --list names an entry's kind before its schema; the longest kinds first,
# since several begin with another ("SEQUENCE OWNED BY", "SEQUENCE").
TOC_KINDS = sorted((
    "TABLE", "TABLE ATTACH", "SEQUENCE", "SEQUENCE OWNED BY", "DEFAULT", "CONSTRAINT", "FK CONSTRAINT",
    "CHECK CONSTRAINT", "INDEX", "INDEX ATTACH", "VIEW", "MATERIALIZED VIEW", "FUNCTION", "PROCEDURE",
    "AGGREGATE", "TYPE", "DOMAIN", "TRIGGER", "RULE", "POLICY", "ROW SECURITY", "COMMENT", "ACL", "DEFAULT ACL",
    "STATISTICS", "SCHEMA", "SHELL TYPE", "CAST", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "COLLATION",
    "CONVERSION", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER",
    "TEXT SEARCH TEMPLATE", "FOREIGN TABLE", "EVENT TRIGGER", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA",
), key=len, reverse=True)

_TOC_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
_SCRIPT_HEADER = re.compile(r"^-- (?:Data for )?Name: (.*); Type: (.*); Schema: (.*); Owner: .*$")
# psql's restrict meta-commands carry a random key; everything else inside an entry is its definition (a SET
# default_tablespace or a comment line in a function body is a difference too).
_NOISE = re.compile(r"^(\\restrict |\\unrestrict )")
# Two-key advisory locks of this class name a scratch database in use (the lease's lock is a one-key lock).
SCRATCH_LOCK_CLASS = 1936613746


class SchemaPlanError(ConsolidationError):
    """The schema cannot be moved; ``problems`` lists every reason."""


# -- names ------------------------------------------------------------------------------------


def scratch_database_name(target_database, module_name):
    """The scratch database of one module: ``<target>__ddl_<module>``, shortened with a hash to 63 bytes.

    Derived from both names, so two modules or two targets never share one, and
    unlike the rehearsal's ``<target>_rehearsal``.
    """
    name = "%s__ddl_%s" % (target_database, module_name)
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    head = target_database.encode("utf-8")[:MAX_IDENTIFIER_BYTES - len("__ddl_") - len(digest)]
    return head.decode("utf-8", "ignore") + "__ddl_" + digest


def name_pattern(name):
    """A pg_dump ``-n``/``-t`` pattern that matches ``name`` literally (quotes make every character plain)."""
    return '"%s"' % name.replace('"', '""')


# -- the archive's table of contents ----------------------------------------------------------


def parse_toc(text):
    """Entries of ``pg_restore --list`` output: dicts with ``line``, ``catalog``, ``kind`` and ``rest``
    (schema, name and owner as pg_restore prints them)."""
    entries = []
    for line in text.splitlines():
        match = _TOC_LINE.match(line)
        if not match:
            continue
        described = match.group(4)
        kind = next((k for k in TOC_KINDS if described.startswith(k + " ")), described.split(" ", 1)[0])
        entries.append({"line": line, "catalog": match.group(2), "kind": kind,
                        "rest": described[len(kind) + 1:]})
    return entries


def is_schema_entry(entry, schemas):
    """The schema itself, or its comment: those belong to the schemas role in the target.

    Its grants are not: a role that may USAGE the legacy schema must still reach the tables it was granted.
    """
    if entry["kind"] == "SCHEMA" and entry["catalog"] == PG_NAMESPACE_OID:
        return any(entry["rest"].startswith("- %s " % name) for name in schemas)
    if entry["kind"] == "COMMENT":
        return any(entry["rest"].startswith("- SCHEMA %s " % name) for name in schemas)
    return False


def restore_list(entries, schemas):
    """The ``pg_restore -L`` list: every entry but the schemas' own (which already exist where it restores)."""
    return "".join(entry["line"] + "\n" for entry in entries if not is_schema_entry(entry, schemas))


def count_kinds(entries, schemas):
    """Objects restored, a count per TOC kind (the schemas' own entries left out)."""
    counts = {}
    for entry in entries:
        if not is_schema_entry(entry, schemas):
            counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
    return counts


# -- what the target holds --------------------------------------------------------------------


def split_script(text):
    """A restore script as ``{(kind, schema, name): statements}``, from the header pg_restore writes before each
    entry. Both sides are printed by the same pg_restore, so only the preamble before the first header, the
    ``--`` lines of the headers themselves, blank lines and psql's restrict meta-commands are left out."""
    entries, key, header_lines = {}, None, 0
    for line in text.splitlines():
        header = _SCRIPT_HEADER.match(line)
        if header:
            key = (header.group(2), header.group(3), header.group(1))
            entries.setdefault(key, [])
            header_lines = 1  # the "--" line after the header closes it
            continue
        if key is None or not line.strip() or _NOISE.match(line):
            continue
        if header_lines and line == "--":
            header_lines = 0
            continue
        entries[key].append(line.rstrip())
    for lines in entries.values():
        while lines and lines[-1] == "--":  # the opening line of the next entry's header
            lines.pop()
    return dict((key, "\n".join(lines)) for key, lines in entries.items())


SCHEMA_PRIVILEGES = ("USAGE", "CREATE")


def schema_grant_statements(schema, grants):
    """GRANT statements giving ``schema`` the legacy schema's grants: ``[(role or None for PUBLIC, privilege,
    grantable)]`` as SCHEMA_GRANTS_QUERY reads them."""
    statements = []
    for role, privilege, grantable in grants:
        if privilege not in SCHEMA_PRIVILEGES:
            raise SchemaPlanError(["schema %s: unknown schema privilege %r" % (quote_ident(schema), privilege)])
        statements.append(sql.SQL("GRANT {} ON SCHEMA {} TO {}{}").format(
            sql.SQL(privilege), sql.Identifier(schema), sql.SQL("PUBLIC") if role is None else sql.Identifier(role),
            sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")))
    return statements


def drop_scratch_statement(name, server_version):
    """DROP DATABASE for a scratch database; WITH (FORCE) exists from PostgreSQL 13 on (on 12 every session
    of ours is closed by the time it runs)."""
    force = sql.SQL(" WITH (FORCE)") if server_version >= 130000 else sql.SQL("")
    return sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)


def describe_entry(key):
    kind, schema, name = key
    return "%s %s" % (kind, name if schema == "-" else "%s.%s" % (quote_ident(schema), name))


def compare_definitions(wanted, existing, own_schema):
    """What the target holds against what the restore would create: ``(state, differences)``.

    ``state`` is ``restore`` when none of it exists yet (and ``own_schema``, the module's schema, holds
    nothing), ``existing`` when all of it exists exactly and ``own_schema`` holds nothing else, else
    ``different`` with every difference named. Shared schemas (a table override's) may hold other objects.
    """
    # The schema's own grants are granted on every restore and may meet the schemas role's own grants there;
    # whether they hold is the verification's schema fidelity, not a reason to refuse the restore.
    wanted = dict((key, text) for key, text in wanted.items() if not (key[1] == "-" and key[2].startswith("SCHEMA ")))
    present = [key for key in wanted if key in existing]
    extra = sorted(key for key in existing if key[1] == own_schema and key not in wanted)
    if not present and not extra:
        return "restore", []
    differences = ["missing in the target: %s" % describe_entry(key) for key in sorted(wanted) if key not in existing]
    differences += ["defined differently in the target: %s" % describe_entry(key)
                    for key in sorted(present) if wanted[key] != existing[key]]
    differences += ["in the target but not in the legacy schema: %s" % describe_entry(key) for key in extra]
    return ("different" if differences else "existing"), differences


# -- extensions -------------------------------------------------------------------------------


def extension_placement(extension, source_schema, target_extensions, extension_schema):
    """The schema an extension of the legacy database lands in, in the scratch and in the target database.

    Where the target already has it; else, for one installed in the legacy source schema itself (which the
    rename moves into the module schema), ``extension_schema``; else the schema it has in the legacy database,
    since the dumped definitions name it there.
    """
    if extension["name"] in target_extensions:
        return target_extensions[extension["name"]]
    if extension["schema"] == source_schema:
        return extension_schema
    return extension["schema"]


def extension_problems(extensions, available, superuser, user, source_schema):
    """Why the login role cannot create the legacy database's extensions (in the scratch database, and in the
    target where missing): ``available`` is ``{name: trusted}`` of the target server."""
    problems = []
    for extension in extensions:
        name = extension["name"]
        if name not in available:
            problems.append("extension %s of the legacy database is not available on the target server: install its "
                            "package (e.g. postgresql-contrib) there" % quote_ident(name))
        elif not superuser and not available[name]:
            problems.append("extension %s is not trusted and %s is not a superuser, so it cannot create it in the "
                            "scratch database nor in the target: run source_ddl as a superuser, or mark the extension "
                            "trusted (trusted = true in its control file) if that is safe"
                            % (quote_ident(name), quote_ident(user)))
        elif extension["schema"] == source_schema and not superuser:
            # The rename carries it into the module schema; moving it out again (ALTER EXTENSION SET SCHEMA)
            # needs ownership of its objects, which belong to the bootstrap superuser even for a trusted one.
            problems.append("extension %s is installed in the legacy source schema %s and must be moved out of the "
                            "renamed schema, which only a superuser may do: run source_ddl as a superuser, or move "
                            "it in the legacy database first (ALTER EXTENSION %s SET SCHEMA <another schema>)"
                            % (quote_ident(name), quote_ident(source_schema), quote_ident(name)))
    return problems


# -- what does not follow a rename ------------------------------------------------------------


def search_path_setting(proconfig):
    """The ``search_path`` of a function's ``proconfig`` (``['search_path=public, pg_temp']``) as a list, or None."""
    for item in proconfig or ():
        name, _sep, value = item.partition("=")
        if name == "search_path":
            return split_search_path(value)
    return None


def split_search_path(value):
    """``public, "My Schema", pg_temp`` as the schema names it lists."""
    names, current, quoted, index = [], "", False, 0
    while index < len(value):
        char = value[index]
        if char == '"':
            if quoted and value[index + 1:index + 2] == '"':
                current += '"'
                index += 1
            else:
                quoted = not quoted
        elif char == "," and not quoted:
            names.append(current.strip())
            current = ""
        elif quoted or not char.isspace() or current:
            current += char
        index += 1
    if current.strip() or names:
        names.append(current.strip())
    return [name for name in names if name != ""]


def rewrite_search_path(names, old, new):
    """``names`` with the legacy schema replaced by the module's."""
    return [new if name == old else name for name in names]


def names_schema(body, schema):
    """Whether SQL text mentions ``schema`` as a qualifier (``schema.`` or ``"schema".``)."""
    quoted = re.escape('"%s"' % schema.replace('"', '""'))
    plain = r"(?<![\w$\"])%s" % re.escape(schema) if re.match(r"^[a-z_][a-z0-9_$]*$", schema) else None
    pattern = "(?:%s)\\s*\\." % ("|".join(part for part in (quoted, plain) if part))
    return re.search(pattern, body or "", re.IGNORECASE if plain else 0) is not None


def routine_findings(routines, old, new, rewrite):
    """Functions whose text or ``SET search_path`` still names the legacy schema after the rename.

    ``routines``: ``[{"signature", "body", "proconfig"}]``. Returns ``(findings, rewrites)``; ``rewrites``
    are ``(signature, new search_path list)`` to apply when ``rewrite`` is set.
    """
    findings, rewrites = [], []
    for routine in routines:
        if names_schema(routine["body"], old):
            findings.append({"function": routine["signature"], "kind": "body",
                             "finding": "its body names schema %s, which is %s in the target: review it"
                                        % (quote_ident(old), quote_ident(new))})
        path = search_path_setting(routine["proconfig"])
        if path is not None and old in path:
            rewritten = rewrite_search_path(path, old, new)
            findings.append({"function": routine["signature"], "kind": "search_path",
                             "search_path": path, "rewritten": rewritten if rewrite else None,
                             "finding": "SET search_path names schema %s: %s" % (
                                 quote_ident(old), "rewritten to %s" % ", ".join(rewritten) if rewrite else
                                 "set rewrite_search_path to rewrite it to %s" % ", ".join(rewritten))})
            if rewrite:
                rewrites.append((routine["signature"], rewritten))
    return findings, rewrites


def cascaded_objects(notices):
    """The objects a ``DROP ... CASCADE`` took with it, from its NOTICE (and DETAIL) lines."""
    found = []
    for notice in notices:
        for line in notice.splitlines():
            line = re.sub(r"^(NOTICE|DETAIL):\s+", "", line.strip())
            if line.startswith("drop cascades to ") and not re.match(r"drop cascades to \d+ other objects", line):
                found.append(line[len("drop cascades to "):])
    return found


# -- client program errors --------------------------------------------------------------------

_PERMISSION_ON = re.compile(r"permission denied for (table|sequence|schema|view|materialized view|function) (\S+)")
_NO_ROLE = re.compile(r'role "([^"]+)" does not exist')


def dump_problem(side, database, user, stderr):
    """Cause and fix of a failed pg_dump of ``database`` on ``side``."""
    text = (stderr or "").strip()
    denied = _PERMISSION_ON.search(text)
    if denied:
        kind, name = denied.groups()
        privilege = "USAGE" if kind == "schema" else "EXECUTE" if kind == "function" else "SELECT"
        return ("pg_dump cannot read %s %s in %s database %s (permission denied: pg_dump locks and reads every "
                "object of the schema): GRANT %s ON %s %s TO %s there, or connect as its owner"
                % (kind, name, side, database, privilege, kind.upper() if kind != "materialized view" else "TABLE",
                   name, quote_ident(user)))
    return "pg_dump of %s database %s failed: %s" % (side, database, text)


def restore_problem(where, stderr):
    """Cause and fix of a failed restore script."""
    text = (stderr or "").strip()
    role = _NO_ROLE.search(text)
    if role:
        return ("restoring into %s failed: the legacy schema grants to (or names) role %s, which does not exist on "
                "the target server: create it there (roles are server-wide) - %s" % (where, quote_ident(role.group(1)),
                                                                                     text))
    if "permission denied to create extension" in text:
        return ("restoring into %s failed: the login role may not create an extension - %s: run as a superuser or "
                "create the extension beforehand" % (where, text))
    return "restoring into %s failed: %s" % (where, text)


def createdb_problem(user, server, cause):
    return ("cannot create the scratch database on the target server %s (%s): source_ddl restores the legacy schema "
            "there first; ALTER ROLE %s CREATEDB, or run as a role that has it" % (server, cause, quote_ident(user)))


def missing_roles_problem(roles):
    return ("the legacy schema grants privileges to (or has policies for) role(s) %s, which do not exist on the target "
            "server: create them there (CREATE ROLE ...), since grants and policies come along"
            % ", ".join(quote_ident(role) for role in roles))
