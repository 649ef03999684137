"""The change applier's decisions: which transactions are applied already, where a relation lands, when its
columns no longer match the target (DDL), and the statements that apply one change (key, full row, TOAST)."""

from __future__ import annotations

import pytest
from constants import HOSTILE
from sqlrender import render

from ansible_collections.classifiedads.consolidation.plugins.module_utils import pgoutput as p
from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_apply as a
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import Column
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_process import restart_pause

MODULE = build_plan([{"name": "Product", "source_database": "Legacy_Product", "schema": "product",
                      "tables": {"Audit": {"schema": "audit", "table": "ProductAudit"}},
                      "exclude_tables": ["Scratch"]}], "Consolidated", {}, {})[0]
INT4, TEXT, VARCHAR = 23, 25, 1043
TYPES = {INT4: "int4", TEXT: "text", VARCHAR: "varchar", 16500: "mood"}


DEFAULT_COLUMNS = (("Id", INT4, True), ("Name", TEXT, False))


def relation(name="Products", namespace="public", identity=p.IDENTITY_DEFAULT, columns=DEFAULT_COLUMNS):
    return p.Relation(16390, namespace, name, identity,
                      tuple(p.RelationColumn(column, oid, -1, key) for column, oid, key in columns))


def target_columns(*columns):
    return [Column(name, type_name, type_name, generated, True) for name, type_name, generated in columns]


def test_a_transaction_whose_commit_starts_before_the_applied_end_is_skipped():
    assert a.skip_transaction(0x100, 0x128)  # the transaction applied last (its commit starts before its end)
    assert a.skip_transaction(0x10, 0x128)
    assert not a.skip_transaction(0x128, 0x128)  # the next commit record starts where the last one ended
    assert not a.skip_transaction(0x200, 0x128)
    assert not a.skip_transaction(0x10, 0)  # nothing applied yet


def test_a_relation_lands_where_the_mapping_places_it():
    assert a.map_relation("Legacy_Product", MODULE, relation(), {}) == ("product", "Products")
    assert a.map_relation("Legacy_Product", MODULE, relation("Audit"), {}) == ("audit", "ProductAudit")


def test_a_partition_lands_beside_its_root_unless_the_mapping_names_it():
    roots = {"Audit_2026": "Audit", "Scratch_1": "Scratch", "Products_eu": "Products"}
    assert a.map_relation("Legacy_Product", MODULE, relation("Audit_2026"), roots) == ("audit", "Audit_2026")
    assert a.map_relation("Legacy_Product", MODULE, relation("Products_eu"), roots) == ("product", "Products_eu")
    with pytest.raises(a.ApplyStopped, match="places it nowhere"):
        a.map_relation("Legacy_Product", MODULE, relation("Scratch_1"), roots)


@pytest.mark.parametrize("rel", [relation("Scratch"), relation(namespace="other")])
def test_a_published_relation_the_mapping_places_nowhere_stops_the_applier(rel):
    with pytest.raises(a.ApplyStopped) as caught:
        a.map_relation("Legacy_Product", MODULE, rel, {})
    assert "Legacy_Product:" in str(caught.value) and "places it nowhere" in str(caught.value)


def test_matching_columns_pass_in_any_order_and_text_meets_varchar():
    a.compare_relation("L:public.Products", relation(), TYPES,
                       target_columns(("Name", "varchar", False), ("Id", "int4", False)))
    # a generated target column is computed there and never in the stream
    a.compare_relation("L:public.Products", relation(), TYPES,
                       target_columns(("Id", "int4", False), ("Name", "text", False), ("Upper", "text", True)))


@pytest.mark.parametrize("columns, words", [
    ((("Id", INT4, True), ("Name", TEXT, False), ("Extra", INT4, False)), "only in the source: \"Extra\""),
    ((("Id", INT4, True),), "only in the target: \"Name\""),
    ((("Id", INT4, True), ("Name", INT4, False)), "\"Name\" is int4 in the source but text in the target"),
    ((("Id", INT4, True), ("Name", 16500, False)), "\"Name\" is mood in the source but text in the target"),
])
def test_columns_changed_on_the_source_stop_the_applier_naming_table_columns_and_fix(columns, words):
    with pytest.raises(a.ApplyStopped) as caught:
        a.compare_relation("L:public.Products", relation(columns=columns), TYPES,
                           target_columns(("Id", "int4", False), ("Name", "text", False)))
    message = str(caught.value)
    assert "DDL on the legacy database" in message and "L:public.Products" in message and words in message
    assert "rollback.yml" in message


def names(rel):
    return [column.name for column in rel.columns]


HOSTILE_REL = relation(HOSTILE, columns=((HOSTILE, INT4, True), ("Body", TEXT, False), ("Note", TEXT, False)))
KEYED = a.target_for("L:x", HOSTILE_REL, "product", HOSTILE)
FULL = a.target_for("L:x", relation(identity=p.IDENTITY_FULL, columns=(("A", INT4, True), ("B", TEXT, True))),
                    "product", "Loose")
QUOTED = '"a""; DROP TABLE x; --"'


def test_insert_binds_every_value_and_quotes_every_name():
    statement, params = a.insert_statement(KEYED, names(HOSTILE_REL), ("1", None, "x"))
    assert render(statement) == f'INSERT INTO "product".{QUOTED} ({QUOTED}, "Body", "Note") VALUES (%s, %s, %s)'
    assert params == ["1", None, "x"]


def test_update_leaves_an_unchanged_toasted_value_out_and_finds_the_row_by_the_new_key():
    update = p.Update(1, None, None, ("1", p.UNCHANGED, "n"))
    statement, params = a.update_statement(KEYED, names(HOSTILE_REL), update)
    assert render(statement) == f'UPDATE "product".{QUOTED} SET {QUOTED} = %s, "Note" = %s WHERE {QUOTED} = %s'
    assert params == ["1", "n", "1"]


def test_update_of_the_key_finds_the_row_by_the_old_key():
    update = p.Update(1, p.OLD_KEY, ("1", None, None), ("2", "b", None))
    statement, params = a.update_statement(KEYED, names(HOSTILE_REL), update)
    assert render(statement).endswith(f"WHERE {QUOTED} = %s")
    assert params == ["2", "b", None, "1"]


def test_full_identity_matches_every_old_column_null_safely_and_exactly_one_row():
    update = p.Update(1, p.OLD_FULL, ("1", None), ("1", "b"))
    statement, params = a.update_statement(FULL, ["A", "B"], update)
    assert render(statement) == ('UPDATE "product"."Loose" SET "A" = %s, "B" = %s WHERE ctid = (SELECT ctid FROM '
                                 '"product"."Loose" WHERE "A" IS NOT DISTINCT FROM %s AND "B" IS NOT DISTINCT FROM %s '
                                 'LIMIT 1)')
    assert params == ["1", "b", "1", None]
    statement, params = a.delete_statement(FULL, ["A", "B"], p.Delete(1, p.OLD_FULL, ("1", None)))
    assert render(statement).startswith('DELETE FROM "product"."Loose" WHERE ctid = (SELECT ctid')
    assert params == ["1", None]


def test_delete_by_the_old_key_tuple_uses_only_the_key_columns():
    statement, params = a.delete_statement(KEYED, names(HOSTILE_REL), p.Delete(1, p.OLD_KEY, ("7", None, None)))
    assert render(statement) == f'DELETE FROM "product".{QUOTED} WHERE {QUOTED} = %s'
    assert params == ["7"]


def test_a_row_that_cannot_be_found_stops_the_applier():
    keyless = a.target_for("L:public.Bare", relation(columns=(("A", INT4, False),)), "product", "Bare")
    with pytest.raises(a.ApplyStopped, match="REPLICA IDENTITY FULL"):
        a.delete_statement(keyless, ["A"], p.Delete(1, p.OLD_KEY, ("1",)))
    with pytest.raises(a.ApplyStopped, match="did not carry a key value"):
        a.update_statement(KEYED, names(HOSTILE_REL), p.Update(1, None, None, (p.UNCHANGED, "b", "c")))


def test_truncate_names_every_table_with_the_options_sent():
    statement = a.truncate_statement([KEYED, FULL], cascade=True, restart_identity=True)
    assert render(statement) == f'TRUNCATE "product".{QUOTED}, "product"."Loose" RESTART IDENTITY CASCADE'
    assert render(a.truncate_statement([FULL], False, False)) == 'TRUNCATE "product"."Loose"'


def test_a_crashing_worker_waits_longer_each_time_up_to_the_cap():
    assert [restart_pause(n) for n in (1, 2, 3, 4, 5, 6, 7, 20)] == [1, 2, 4, 8, 16, 30, 30, 30]
