"""The plan-time data checks' decisions, case by case (data_checks: pure functions, no server)."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import data_checks
from ansible_collections.classifiedads.consolidation.plugins.module_utils.data_checks import (
    CheckConstraint,
    Column,
    ForeignKey,
    UniqueIndex,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident


def numeric(precision, scale):
    return ((precision << 16) | (scale & 0x7FF)) + 4


def col(name, type_name="text", typmod=-1, display=None, required=False, generated=False):
    return Column(name, type_name, typmod, display or type_name, required, generated)


# -- typmods -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typmod, expected", [
    (-1, None),
    (numeric(6, 2), (6, 2)),
    (numeric(1000, 0), (1000, 0)),
    (numeric(3, -2), (3, -2)),  # PostgreSQL 15: a negative scale rounds to hundreds
])
def test_numeric_typmod_decodes_precision_and_signed_scale(typmod, expected):
    assert data_checks.numeric_typmod(typmod) == expected


@pytest.mark.parametrize("type_name, typmod, expected", [
    ("varchar", 9, 5), ("bpchar", 5, 1), ("_varchar", 14, 10), ("varchar", -1, None), ("text", -1, None),
])
def test_character_limit_is_the_declared_length(type_name, typmod, expected):
    assert data_checks.character_limit(type_name, typmod) == expected


# -- type rules ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, target, kind, params", [
    # character family: only a shorter limit than the source's needs looking at the data
    (("text", -1), ("varchar", 9), "length", (5,)),
    (("varchar", 14), ("varchar", 9), "length", (5,)),
    (("varchar", 7), ("varchar", 9), None, None),
    (("varchar", 9), ("text", -1), None, None),
    (("text", -1), ("bpchar", 6), "length", (2,)),
    (("_text", -1), ("_varchar", 6), "length_array", (2,)),
    # numeric: rounding (scale) and overflow (integer digits) both count
    (("numeric", numeric(12, 4)), ("numeric", numeric(6, 2)), "numeric", (6, 2)),
    (("numeric", -1), ("numeric", numeric(20, 2)), "numeric", (20, 2)),
    (("numeric", numeric(6, 2)), ("numeric", numeric(8, 2)), None, None),
    (("numeric", numeric(6, 2)), ("numeric", numeric(8, 3)), None, None),
    (("numeric", numeric(6, 2)), ("numeric", numeric(6, 3)), "numeric", (6, 3)),
    (("numeric", numeric(6, 2)), ("numeric", -1), None, None),
    (("int4", -1), ("numeric", numeric(10, 0)), None, None),
    (("int8", -1), ("numeric", numeric(10, 0)), "numeric", (10, 0)),
    (("int4", -1), ("numeric", numeric(10, 2)), "numeric", (10, 2)),
    # integers: only a narrower target
    (("int8", -1), ("int4", -1), "range", (-2147483648, 2147483647)),
    (("int4", -1), ("int2", -1), "range", (-32768, 32767)),
    (("int4", -1), ("int8", -1), None, None),
    # date and time
    (("timestamptz", -1), ("timestamp", -1), "not_null", ()),
    (("timetz", -1), ("time", -1), "not_null", ()),
    (("timestamp", 6), ("timestamp", 0), "cast_changes", ("timestamp(0)",)),
    (("timestamp", -1), ("timestamp", 3), "cast_changes", ("timestamp(3)",)),
    (("timestamp", 0), ("timestamp", 3), None, None),
    (("timestamp", 3), ("timestamp", -1), None, None),
    (("interval", 3), ("interval", 6), "cast_changes", ("interval(6)",)),  # fields too: PostgreSQL decides
    # bits
    (("bit", 3), ("bit", 4), "bit_length", (4,)),
    (("bit", 4), ("bit", 4), None, None),
    (("varbit", 3), ("varbit", 5), None, None),
    (("varbit", -1), ("varbit", 5), "length", (5,)),
    # another type with a narrower typmod: not provable here, the COPY enforces it
    (("geometry", 1107460), ("geometry", 1107464), "unprovable", ()),
    # different types outside the families: the column match refuses them, no rule here
    (("uuid", -1), ("text", -1), None, None),
    (("text", -1), ("text", -1), None, None),
])
def test_type_rule_by_family(source, target, kind, params):
    displays = {"timestamp": "timestamp({})", "interval": "interval({})"}
    target_display = displays.get(target[0], target[0]).format(target[1])
    found = data_checks.type_rule(col("c", *source), col("c", target[0], target[1], target_display))
    assert (found[0], found[1]) == (kind, params) if kind else found is None, found


def test_type_rule_names_the_target_type_in_its_words():
    kind, _params, what = data_checks.type_rule(col("c", "text"), col("c", "varchar", 9, "character varying(5)"))
    assert what == "hold values longer than 5 characters (character varying(5))"


# -- column rules -----------------------------------------------------------------------------------------

def test_column_rules_cover_both_sides_and_every_changed_type():
    source = [col("Id", "int4"), col("Name"), col("Extra"), col("Total", "int8")]
    target = [col("Id", "int4"), col("Name", "varchar", 24, "character varying(20)"), col("Total", "int4"),
              col("Required", "int4", required=True), col("Optional", "int4"),
              col("Computed", "int4", required=True, generated=True)]
    rules = data_checks.column_rules(source, target)
    assert [(rule.column, rule.kind, rule.params) for rule in rules] == [
        ("Name", "length", (20,)),
        ("Extra", "not_null", ()),
        ("Total", "range", (-2147483648, 2147483647)),
        ("Required", "every_row", ()),
    ]


def test_a_source_column_computed_by_the_target_is_not_lost():
    rules = data_checks.column_rules([col("Id", "int4"), col("Total", "int4")],
                                     [col("Id", "int4"), col("Total", "int4", generated=True)])
    assert rules == []


def test_identical_tables_have_no_rule():
    columns = [col("Id", "uuid"), col("Name", "varchar", 24), col("Price", "numeric", numeric(10, 2))]
    assert data_checks.column_rules(columns, list(columns)) == []


# -- what the source enforces already ------------------------------------------------------------------

def unique(columns, name="UQ", predicate=None, nnd=False, deterministic=True, primary=False):
    return UniqueIndex(name, primary, list(columns), predicate, nnd, deterministic)


@pytest.mark.parametrize("target, source, implied", [
    (unique(["Email"]), [unique(["Email"])], True),
    (unique(["Email", "Tenant"]), [unique(["Email"])], True),  # unique on fewer columns is stricter
    (unique(["Email"]), [unique(["Email", "Tenant"])], False),
    (unique(["Email"]), [], False),
    (unique(["Email"]), [unique(["Email"], predicate="(\"Deleted\" = false)")], False),
    (unique(["Email"]), [unique([])], False),  # an expression index proves nothing about the columns
    (unique(["Email"], nnd=True), [unique(["Email"])], False),
    (unique(["Email"], nnd=True), [unique(["Email"], nnd=True)], True),
    (unique(["Email"], deterministic=False), [unique(["Email"])], False),  # case-insensitive target
    (unique([]), [unique([])], False),
])
def test_unique_implied_only_by_a_plain_index_on_a_subset(target, source, implied):
    assert data_checks.unique_implied(target, source) is implied


def fk(columns, table="Parents", referenced=("Id",), match_full=False, validated=True, schema="public"):
    return ForeignKey("FK", list(columns), schema, table, list(referenced), match_full, validated)


@pytest.mark.parametrize("source_keys, match_full, implied", [
    ([fk(["ParentId"])], False, True),
    ([fk(["ParentId"], validated=False)], False, False),
    ([fk(["ParentId"], table="Others")], False, False),
    ([fk(["OtherId"])], False, False),
    ([fk(["ParentId"])], True, False),
    ([fk(["ParentId"], match_full=True)], True, True),
    ([], False, False),
])
def test_foreign_key_implied_by_the_same_validated_key_between_the_source_tables(source_keys, match_full, implied):
    key = fk(["ParentId"], schema="checked", match_full=match_full)
    assert data_checks.foreign_key_implied(key, "Parents", source_keys) is implied


def test_check_implied_by_the_same_validated_definition():
    check = CheckConstraint("CK", ["Qty"], 'CHECK (("Qty" >= 0)) NOT VALID', '("Qty" >= 0)', "", True)
    same = CheckConstraint("other name", ["Qty"], 'CHECK (("Qty" >= 0))', "", "", True)
    assert data_checks.check_implied(check, [same])
    assert not data_checks.check_implied(check, [same._replace(validated=False)])
    assert not data_checks.check_implied(check, [same._replace(definition='CHECK (("Qty" > 0))')])


# -- expressions the source can evaluate --------------------------------------------------------------------

# pg_node_tree text of CHECK ("Qty" >= 0) on an int4 column, as PostgreSQL 15 stores it.
QTY_TREE = ("{OPEXPR :opno 525 :opfuncid 150 :opresulttype 16 :opretset false :opcollid 0 :inputcollid 0 "
            ":args ({VAR :varno 1 :varattno 2 :vartype 23 :vartypmod -1 :varcollid 0 :varlevelsup 0 :varnosyn 1 "
            ":varattnosyn 2 :location 60} {CONST :consttype 23 :consttypmod -1 :constcollid 0 :constlen 4 "
            ":constbyval true :constisnull false :location 69 :constvalue 4 [ 0 0 0 0 0 0 0 0 ]}) :location 66}")


def test_expression_references_lists_nodes_functions_operators_and_types():
    nodes, functions, operators, others = data_checks.expression_references(QTY_TREE)
    assert nodes == {"OPEXPR", "VAR", "CONST"}
    assert (functions, operators) == ({150}, {525})
    assert others == {16, 23, 0}


def test_a_builtin_immutable_expression_over_source_columns_can_be_checked():
    asked = []

    def immutable(functions, operators):
        asked.append((functions, operators))
        return True

    assert data_checks.expression_problem(QTY_TREE, immutable, ["Qty"], {"Id", "Qty"}) is None
    assert asked == [({150}, {525})]


@pytest.mark.parametrize("tree, immutable, columns, reason", [
    (QTY_TREE, False, ["Qty"], "it calls a function that is not built in or not immutable"),
    (QTY_TREE, True, ["Quantity"], 'the source has no column "Quantity"'),
    (QTY_TREE.replace(":vartype 23", ":vartype 16385"), True, ["Qty"],
     "it uses a type or collation that is not built in"),
    ("{COERCEVIAIO :arg {VAR :varno 1 :vartype 25} :resulttype 1184}", True, [],
     "it uses COERCEVIAIO, whose result is not a function of the row alone"),
    ("{SQLVALUEFUNCTION :op 0 :type 1082 :typmod -1 :location 7}", True, [],
     "it uses SQLVALUEFUNCTION, whose result is not a function of the row alone"),
])
def test_an_expression_the_source_cannot_evaluate_says_why(tree, immutable, columns, reason):
    assert data_checks.expression_problem(tree, lambda functions, operators: immutable, columns,
                                          {"Id", "Qty"}) == reason


# -- problems -------------------------------------------------------------------------------------------------

def test_key_text_shows_single_and_composite_keys_and_cuts_long_ones():
    assert data_checks.key_text(["42"]) == "42"
    assert data_checks.key_text(["1", None]) == "(1, NULL)"
    assert data_checks.key_text(["x" * 100]) == "x" * 64 + "..."


def test_a_problem_keeps_at_most_five_keys_and_says_when_there_are_more():
    problem = data_checks.make_problem("db:public.t", "s.t", "column", 'column "c"', "hold values", 7,
                                       [[str(n)] for n in range(7)], ["Id"])
    assert problem["keys"] == ["0", "1", "2", "3", "4"] and problem["more_keys"]
    assert data_checks.problem_message(problem) == \
        'db:public.t -> s.t: column "c": 7 rows hold values; first keys 0, 1, 2, 3, 4 ("Id")'


def test_a_problem_message_quotes_hostile_names_and_has_no_keys_without_a_key():
    problem = data_checks.make_problem("db:public.t", "s.t", "check", f"check {quote_ident(HOSTILE)}",
                                       "fail CHECK (x)", 1, [], [])
    assert problem["keys"] == [] and problem["more_keys"] is False
    assert data_checks.problem_message(problem) == \
        'db:public.t -> s.t: check "a""; DROP TABLE x; --": 1 row fail CHECK (x)'


def test_a_unique_problem_shows_every_duplicated_value_when_there_are_few():
    problem = data_checks.make_problem("db:public.t", "s.t", "unique", 'unique key "UQ"', "share their key", 5,
                                       [["a"], ["b"]], ["Email"], more_keys=False)
    assert data_checks.problem_message(problem).endswith("; keys a, b (\"Email\")")


def test_summary_line_points_at_the_report_file():
    assert data_checks.summary_line([{}], "/runs/r1/data_checks.json") == (
        "1 data problem found before the copy (counts above; every one with its keys in /runs/r1/data_checks.json)")
    assert data_checks.summary_line([{}, {}], None) == (
        "2 data problems found before the copy (counts above; keys in the task result)")
