# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recreate a legacy database's table definitions in a schema of the consolidated database.

Pure functions of plain data (the catalog snapshots that ``ddl_catalog.py``
reads): which objects a module needs, in which order, the statements that
create them (``psycopg2.sql`` compositions; identifiers always through
``sql.Identifier``), and how an existing target table differs from the
definition it should have.

Expressions are never rewritten as text. The server prints them (column
types, defaults, CHECK and index definitions) with the *source* schema alone
in front of ``pg_catalog`` on the search_path, so objects of that schema come
out unqualified and everything else qualified. The statements then run with
the *target* schema in that place, so the same text binds to the copies made
here: the module's enum and domain types, the sequences of its serial
columns. Objects the text could name but this module does not copy (a
function or an extension type in the source schema, say) are found through
``pg_depend`` beforehand and reported as problems instead of failing halfway.

Order: types, sequences, tables, primary/unique/check/exclusion constraints,
indexes, foreign keys (last, as pg_dump does, because a foreign key may need
a unique *index* built by the step before), then ``OWNED BY`` of the serial
sequences.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import qualified, quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

try:
    from psycopg2 import sql
except ImportError:  # pragma: no cover - the modules report the missing library
    sql = None

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
FK_MATCH = {"s": "", "f": " MATCH FULL", "p": " MATCH PARTIAL"}
IDENTITY = {"a": "ALWAYS", "d": "BY DEFAULT"}
# Objects that a table's own definition references and that come along with it.
TABLE_PARTS = ("table", "index", "partitioned table", "partitioned index")

TABLE_ATTRIBUTES = ("persistence",)
COLUMN_ATTRIBUTES = ("type", "not_null", "default", "identity", "generated", "collation")
SEQUENCE_ATTRIBUTES = ("type", "start", "increment", "min", "max", "cache", "cycle")
ENUM_ATTRIBUTES = ("kind", "labels")
DOMAIN_ATTRIBUTES = ("kind", "base_type", "not_null", "default", "collation", "constraints")


class DdlError(ConsolidationError):
    """The definitions cannot be recreated as asked; ``problems`` lists every reason."""


# -- statements -------------------------------------------------------------------------------


def search_path_statement(schemas):
    """``SET LOCAL search_path``: the given schemas, then pg_catalog (explicitly last, as when reading)."""
    return sql.SQL("SET LOCAL search_path TO {}, pg_catalog").format(
        sql.SQL(", ").join(sql.Identifier(schema) for schema in schemas))


def sequence_options(sequence, with_type=True):
    parts = []
    if with_type:
        parts.append(sql.SQL("AS ") + sql.SQL(sequence["type"]))
    parts += [
        sql.SQL("INCREMENT BY {}").format(sql.Literal(int(sequence["increment"]))),
        sql.SQL("MINVALUE {}").format(sql.Literal(int(sequence["min"]))),
        sql.SQL("MAXVALUE {}").format(sql.Literal(int(sequence["max"]))),
        sql.SQL("START WITH {}").format(sql.Literal(int(sequence["start"]))),
        sql.SQL("CACHE {}").format(sql.Literal(int(sequence["cache"]))),
        sql.SQL("CYCLE" if sequence["cycle"] else "NO CYCLE"),
    ]
    return sql.SQL(" ").join(parts)


def create_sequence(schema, sequence):
    return sql.SQL("CREATE SEQUENCE {} {}").format(sql.Identifier(schema, sequence["name"]),
                                                   sequence_options(sequence))


def sequence_owned_by(schema, sequence_name, table_schema, table, column):
    return sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(sql.Identifier(schema, sequence_name),
                                                           sql.Identifier(table_schema, table, column))


def create_enum(schema, type_):
    return sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
        sql.Identifier(schema, type_["name"]), sql.SQL(", ").join(sql.Literal(label) for label in type_["labels"]))


def create_domain(schema, type_):
    """``CREATE DOMAIN`` and one ``ALTER DOMAIN ... ADD CONSTRAINT`` per check (which may be NOT VALID)."""
    parts = [sql.SQL("CREATE DOMAIN {} AS ").format(sql.Identifier(schema, type_["name"])),
             sql.SQL(type_["base_type"])]
    if type_.get("collation"):
        parts.append(sql.SQL(" COLLATE ") + sql.SQL(type_["collation"]))
    if type_.get("default") is not None:
        parts.append(sql.SQL(" DEFAULT ") + sql.SQL(type_["default"]))
    if type_.get("not_null"):
        parts.append(sql.SQL(" NOT NULL"))
    statements = [sql.Composed(parts)]
    for constraint in type_.get("constraints") or []:
        statements.append(sql.SQL("ALTER DOMAIN {} ADD CONSTRAINT {} ").format(
            sql.Identifier(schema, type_["name"]), sql.Identifier(constraint["name"]))
            + sql.SQL(constraint["definition"]))
    return statements


def column_definition(column, schema):
    """One column of CREATE TABLE. ``schema`` is where an identity column's sequence goes."""
    parts = [sql.Identifier(column["name"]), sql.SQL(" "), sql.SQL(column["type"])]
    if column.get("collation"):
        parts += [sql.SQL(" COLLATE "), sql.SQL(column["collation"])]
    if column.get("generated") == "s":
        parts += [sql.SQL(" GENERATED ALWAYS AS ("), sql.SQL(column["default"]), sql.SQL(") STORED")]
    elif column.get("identity"):
        sequence = column["identity_sequence"]
        parts += [sql.SQL(" GENERATED %s AS IDENTITY (SEQUENCE NAME " % IDENTITY[column["identity"]]),
                  sql.Identifier(schema, sequence["name"]), sql.SQL(" "),
                  sequence_options(sequence, with_type=False), sql.SQL(")")]
    elif column.get("default") is not None:
        parts += [sql.SQL(" DEFAULT "), sql.SQL(column["default"])]
    if column.get("not_null"):
        parts.append(sql.SQL(" NOT NULL"))
    return sql.Composed(parts)


def create_table(schema, table):
    return sql.SQL("CREATE {}TABLE {} ({})").format(
        sql.SQL("UNLOGGED " if table.get("persistence") == "u" else ""),
        sql.Identifier(schema, table["name"]),
        sql.SQL(", ").join(column_definition(column, schema) for column in table["columns"]))


def add_constraint(schema, table_name, constraint):
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
        sql.Identifier(schema, table_name), sql.Identifier(constraint["name"])) + sql.SQL(constraint["definition"])


def add_foreign_key(schema, table_name, fk):
    """Built from the catalog's parts, so the referenced table can be in another schema or renamed."""
    on_delete = sql.SQL(FK_ACTIONS[fk["on_delete"]])
    if fk.get("delete_set_columns"):
        on_delete = on_delete + sql.SQL(" ({})").format(
            sql.SQL(", ").join(sql.Identifier(column) for column in fk["delete_set_columns"]))
    statement = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){} "
                        "ON UPDATE {} ON DELETE {}").format(
        sql.Identifier(schema, table_name),
        sql.Identifier(fk["name"]),
        sql.SQL(", ").join(sql.Identifier(column) for column in fk["columns"]),
        sql.Identifier(fk["ref_schema"], fk["ref_table"]),
        sql.SQL(", ").join(sql.Identifier(column) for column in fk["ref_columns"]),
        sql.SQL(FK_MATCH[fk["match"]]),
        sql.SQL(FK_ACTIONS[fk["on_update"]]),
        on_delete)
    if fk.get("deferrable"):
        statement += sql.SQL(" DEFERRABLE INITIALLY DEFERRED" if fk.get("deferred") else " DEFERRABLE")
    if not fk.get("validated", True):
        statement += sql.SQL(" NOT VALID")
    return statement


def index_tail(definition, unique, quoted_index, qualified_table, partitioned=False):
    """The part of ``pg_get_indexdef`` output from ``USING`` on.

    The head is checked character for character against what the server
    prints for this index (``CREATE [UNIQUE] INDEX <name> ON [ONLY] <schema>.<table> ``;
    the table is always schema-qualified, whatever the search_path, since the
    CVE-2018-1058 fixes), so only the method, columns, INCLUDE, WITH and WHERE
    text is reused and the head is rebuilt for the target table.
    """
    head = "CREATE %sINDEX %s ON %s%s " % (
        "UNIQUE " if unique else "", quoted_index, "ONLY " if partitioned else "", qualified_table)
    if not definition.startswith(head) or not definition[len(head):].startswith("USING "):
        raise DdlError(["cannot take index definition apart: expected it to start with %r, got %r"
                        % (head + "USING ", definition)])
    return definition[len(head):]


def create_index(schema, table_name, index):
    return sql.SQL("CREATE {}INDEX {} ON {} ").format(
        sql.SQL("UNIQUE " if index["unique"] else ""), sql.Identifier(index["name"]),
        sql.Identifier(schema, table_name)) + sql.SQL(index["definition"])


# -- what a module needs ----------------------------------------------------------------------


def destination(module, table_name):
    """(schema, table) a source table lands in, or None when excluded (plan.table_destination's rule)."""
    if table_name in module["exclude_tables"]:
        return None
    override = module["tables"].get(table_name)
    if override:
        return override["schema"], override["table"]
    return module["schema"], table_name


def needed_types(uses, types_by_oid):
    """Types of the source schema that the copied definitions use, dependencies first; and problems.

    ``uses`` is a list of (type oid, what uses it): column types and types
    that defaults, checks or indexes name. Enums and domains are copied (an
    array of one comes with it); anything else defined in the source schema
    (composite, range or base types, an extension's types) is a problem.
    """
    ordered, problems, seen = [], [], set()

    def visit(oid, used_by):
        type_ = types_by_oid.get(oid)
        if type_ is None or oid in seen:
            return
        seen.add(oid)
        if type_["kind"] == "array":
            visit(type_["element"], used_by)
        elif type_.get("extension"):
            problems.append("%s uses type %s of extension %s, installed in the source schema; source_ddl does not "
                            "create extension objects" % (used_by, quote_ident(type_["name"]),
                                                          type_["extension"]))
        elif type_["kind"] == "domain":
            visit(type_["base"], used_by)
            ordered.append(type_)
        elif type_["kind"] == "enum":
            ordered.append(type_)
        else:
            problems.append("%s uses %s type %s of the source schema, which source_ddl does not copy"
                            % (used_by, type_["kind"], quote_ident(type_["name"])))

    for oid, used_by in uses:
        visit(oid, used_by)
    return ordered, problems


def type_uses(tables, dependencies, source_schema):
    """(type oid, what uses it) for every column of ``tables`` and every type their expressions name."""
    names = set(table["name"] for table in tables)
    uses = []
    for table in tables:
        for column in table["columns"]:
            used_by = "column %s.%s" % (quote_ident(table["name"]), quote_ident(column["name"]))
            uses.append((column["type_oid"], used_by))
    for dep in dependencies:
        if dep.get("table") in names and dep["ref_type"] == "type" and dep["ref_schema"] == source_schema:
            uses.append((dep["ref_oid"], dep["dependent"]))
    return uses


def dependency_problems(dependencies, source_schema, table_names, type_oids):
    """References of the copied definitions to objects nothing here copies.

    ``dependencies`` are the catalog's rows: ``table`` or ``domain`` (the owner
    of the dependent object), ``dependent`` (its description), ``ref_type``,
    ``ref_schema``, ``ref_identity``, ``ref_oid`` and ``ref_extension``.
    """
    problems = []
    for dep in dependencies:
        if dep.get("table") is not None and dep["table"] not in table_names:
            continue
        if dep.get("domain_oid") is not None and dep["domain_oid"] not in type_oids:
            continue
        schema = dep["ref_schema"]
        if schema in SYSTEM_SCHEMAS or dep["ref_type"] in TABLE_PARTS:
            continue
        what = "%s uses %s %s" % (dep["dependent"], dep["ref_type"], dep["ref_identity"])
        if schema == source_schema:
            if dep["ref_type"] in ("sequence", "type"):
                continue  # sequences are copied; types are copied or reported by needed_types
            if dep.get("ref_extension"):
                problems.append("%s of extension %s, installed in the source schema; source_ddl does not create "
                                "extension objects" % (what, dep["ref_extension"]))
            else:
                problems.append("%s, which source_ddl does not copy" % what)
        elif not dep.get("ref_extension"):
            # An extension's objects are expected in the target database too; a user's are not.
            problems.append("%s from schema %s, which source_ddl does not copy" % (what, schema))
    return problems


def _fk_target(fk, module, source_schema, source_tables):
    if fk["ref_schema"] != source_schema or fk["ref_table"] not in source_tables:
        return None
    return destination(module, fk["ref_table"])


def expected_table(table, module, source_schema, source_tables):
    """The definition a copied table must have in the target, and warnings about what is left out."""
    target_schema, target_name = destination(module, table["name"])
    warnings = []
    foreign_keys = []
    for fk in table["foreign_keys"]:
        landing = _fk_target(fk, module, source_schema, source_tables)
        if landing is None:
            warnings.append("foreign key %s of %s is not created: it references %s, which is not copied"
                            % (quote_ident(fk["name"]), qualified(target_schema, target_name),
                               qualified(fk["ref_schema"], fk["ref_table"])))
            continue
        foreign_keys.append(dict(fk, ref_schema=landing[0], ref_table=landing[1]))
    expected = dict(table, name=target_name, foreign_keys=foreign_keys)
    return target_schema, expected, warnings


# -- comparing --------------------------------------------------------------------------------


def _compare_attributes(label, attributes, expected, actual):
    return ["%s: %s %r, expected %r" % (label, attribute, actual.get(attribute), expected.get(attribute))
            for attribute in attributes if expected.get(attribute) != actual.get(attribute)]


def _compare_named(label, kind, expected, actual, attributes):
    want = dict((item["name"], item) for item in expected)
    have = dict((item["name"], item) for item in actual)
    lines = ["%s: %s %s is missing" % (label, kind, quote_ident(name)) for name in sorted(set(want) - set(have))]
    lines += ["%s: unexpected %s %s" % (label, kind, quote_ident(name)) for name in sorted(set(have) - set(want))]
    for name in sorted(set(want) & set(have)):
        lines += _compare_attributes("%s: %s %s" % (label, kind, quote_ident(name)), attributes,
                                     want[name], have[name])
    return lines


FK_ATTRIBUTES = ("columns", "ref_schema", "ref_table", "ref_columns", "match", "on_update", "on_delete",
                 "delete_set_columns", "deferrable", "deferred", "validated")


def table_differences(schema, expected, actual):
    """Every way the existing target table differs from the expected definition (empty when equal)."""
    label = qualified(schema, expected["name"])
    lines = _compare_attributes(label, TABLE_ATTRIBUTES, expected, actual)
    want_columns = [column["name"] for column in expected["columns"]]
    have_columns = [column["name"] for column in actual["columns"]]
    if want_columns != have_columns:
        lines.append("%s: columns are %s, expected %s" % (label, have_columns, want_columns))
    have_by_name = dict((column["name"], column) for column in actual["columns"])
    for column in expected["columns"]:
        other = have_by_name.get(column["name"])
        if other is None:
            continue
        column_label = "%s column %s" % (label, quote_ident(column["name"]))
        lines += _compare_attributes(column_label, COLUMN_ATTRIBUTES, column, other)
        if column.get("identity") and other.get("identity"):
            want_seq = dict(column["identity_sequence"], type=None)
            have_seq = dict(other["identity_sequence"], type=None)
            lines += _compare_attributes(column_label + " identity", ("name",) + SEQUENCE_ATTRIBUTES,
                                         want_seq, have_seq)
    lines += _compare_named(label, "constraint", expected["constraints"], actual["constraints"],
                            ("type", "definition"))
    lines += _compare_named(label, "foreign key", expected["foreign_keys"], actual["foreign_keys"], FK_ATTRIBUTES)
    lines += _compare_named(label, "index", expected["indexes"], actual["indexes"], ("unique", "definition"))
    return lines


def type_differences(schema, expected, actual):
    attributes = ENUM_ATTRIBUTES if expected["kind"] == "enum" else DOMAIN_ATTRIBUTES
    return _compare_attributes("type %s" % qualified(schema, expected["name"]), attributes, expected, actual)


def sequence_differences(schema, expected, actual):
    return _compare_attributes("sequence %s" % qualified(schema, expected["name"]), SEQUENCE_ATTRIBUTES,
                               expected, actual)


# -- the plan for one module ------------------------------------------------------------------


def search_path_for(table_schema, module_schema):
    return (table_schema,) if table_schema == module_schema else (table_schema, module_schema)


def plan_module(module, source, target):
    """The statements that recreate one module's tables in the target; raises DdlError.

    ``source`` is the catalog of the module's source schema (all of it);
    ``target`` holds what already exists in the target schemas: ``tables`` and
    ``sequences`` keyed by (schema, name), ``types`` keyed by name (module
    schema). Returns ``{"steps", "tables", "warnings"}``, where ``steps`` is
    a list of (search_path, statement) in execution order and ``tables`` says,
    per copied table, whether it is ``created`` or ``existing``.
    """
    source_schema, module_schema = module["source_schema"], module["schema"]
    problems, warnings = [], []
    copied = []
    for name in sorted(source["tables"]):
        table = source["tables"][name]
        if destination(module, name) is None:
            continue
        for reason in table.get("unsupported") or []:
            problems.append("%s: %s" % (qualified(source_schema, name), reason))
        if table.get("triggers"):
            warnings.append("%s has %d trigger(s), which source_ddl does not copy"
                            % (qualified(source_schema, name), table["triggers"]))
        copied.append(table)
    for name in source.get("other_relations") or []:
        warnings.append("%s is not a table; source_ddl does not copy it" % qualified(source_schema, name))
    unknown = sorted(set(module["tables"]) - set(source["tables"]))
    if unknown:
        warnings.append("module %s: no table %s in %s; its override is unused"
                        % (module["name"], ", ".join(unknown), qualified(module["source_database"], source_schema)))

    dependencies = source.get("dependencies") or []
    types, type_problems = needed_types(type_uses(copied, dependencies, source_schema), source["types_by_oid"])
    problems += type_problems
    type_oids = set(type_["oid"] for type_ in types)
    type_oids |= set(oid for oid, type_ in source["types_by_oid"].items()
                     if type_["kind"] == "array" and type_["element"] in type_oids)
    problems += dependency_problems(dependencies, source_schema,
                                    set(table["name"] for table in copied), type_oids)

    sequences = _sequences_to_copy(copied, source, module, problems)
    steps, tables = [], []
    for type_ in types:
        existing = target["types"].get(type_["name"])
        if existing is not None:
            problems += type_differences(module_schema, type_, existing)
        elif type_["kind"] == "enum":
            steps.append(((module_schema,), create_enum(module_schema, type_)))
        else:
            steps += [((module_schema,), statement) for statement in create_domain(module_schema, type_)]

    created = []
    for table in copied:
        target_schema, expected, table_warnings = expected_table(table, module, source_schema, source["tables"])
        warnings += table_warnings
        state = "created"
        existing = target["tables"].get((target_schema, expected["name"]))
        if existing is not None:
            state = "existing"
            problems += table_differences(target_schema, expected, existing)
        else:
            created.append((target_schema, expected))
        tables.append({"module": module["name"], "source_table": table["name"], "schema": target_schema,
                       "table": expected["name"], "state": state})

    owned_by = []
    for schema, sequence, owner in sequences:
        existing = target["sequences"].get((schema, sequence["name"]))
        if existing is not None:
            problems += sequence_differences(schema, sequence, existing)
        else:
            steps.append(((schema,), create_sequence(schema, sequence)))
        if owner is not None and any((owner[0], owner[1]) == (s, t["name"]) for s, t in created):
            owned_by.append(((schema,), sequence_owned_by(schema, sequence["name"], *owner)))
    if problems:
        raise DdlError(problems)

    for schema, table in created:
        steps.append((search_path_for(schema, module_schema), create_table(schema, table)))
    for schema, table in created:
        path = search_path_for(schema, module_schema)
        steps += [(path, add_constraint(schema, table["name"], constraint)) for constraint in table["constraints"]]
    for schema, table in created:
        path = search_path_for(schema, module_schema)
        steps += [(path, create_index(schema, table["name"], index)) for index in table["indexes"]]
    for schema, table in created:
        path = search_path_for(schema, module_schema)
        steps += [(path, add_foreign_key(schema, table["name"], fk)) for fk in table["foreign_keys"]]
    steps += owned_by
    return {"steps": steps, "tables": tables, "warnings": warnings}


def _sequences_to_copy(copied, source, module, problems):
    """(schema, sequence, owner) for every sequence of the source schema a copied column uses or owns.

    ``owner`` is (schema, table, column) in the target when a copied column owns
    the sequence (a serial); such a sequence lands beside its table. Identity
    sequences are not listed: CREATE TABLE makes them.
    """
    by_name = source["sequences"]
    wanted = []
    for table in copied:
        for schema, name in table.get("default_sequences") or []:
            if schema == module["source_schema"] and name not in wanted:
                wanted.append(name)
    for name, sequence in sorted(by_name.items()):
        owner = sequence.get("owned_by")
        if owner and owner["deptype"] == "a" and owner["schema"] == module["source_schema"] \
                and destination(module, owner["table"]) is not None and name not in wanted:
            wanted.append(name)
    result = []
    for name in wanted:
        sequence = by_name.get(name)
        if sequence is None:
            problems.append("sequence %s is not in the source catalog" % qualified(module["source_schema"], name))
            continue
        owner = sequence.get("owned_by")
        landing = None
        if owner and owner["deptype"] == "a" and owner["schema"] == module["source_schema"]:
            landing = destination(module, owner["table"])
        if landing is not None:
            result.append((landing[0], sequence, (landing[0], landing[1], owner["column"])))
        else:
            result.append((module["schema"], sequence, None))
    return result


def flatten_steps(steps):
    """Statements in order, with ``SET LOCAL search_path`` wherever the path changes."""
    statements, current = [], None
    for path, statement in steps:
        if path != current:
            statements.append(search_path_statement(path))
            current = path
        statements.append(statement)
    return statements
