"""The module SQL files, the reference catalog and the catalog diff, checked without a server."""

from __future__ import annotations

import copy
import re

import pytest
from devkit import catalog, ddl, legacy_data, reference_catalog


@pytest.mark.parametrize("module", ddl.MODULES, ids=lambda module: module.name)
def test_module_files_have_the_sections_and_no_schema(module):
    sections = ddl.module_sections(module.schema)
    assert tuple(sections) == ddl.SECTIONS
    body = "".join(sections.values())
    # Schema-unqualified: the same file builds "public" of the legacy database and the module schema.
    schemas = "|".join(["public", *ddl.MODULES_BY_SCHEMA])
    assert not re.search(rf'\b"?({schemas})"?\s*\.\s*"', body)
    # Every table of the reference is created, and nothing else.
    created = set(re.findall(r'CREATE TABLE "(\w+)"', sections["tables"]))
    assert created == set(reference_catalog.module_tables(module.schema))


def test_modules_run_in_the_migrators_order_with_distinct_history_ids():
    assert [module.name for module in ddl.MODULES] == [
        "AuditLog", "Configuration", "Identity", "Notification", "Product", "Storage"]
    ids = [module.legacy_migration_id for module in ddl.MODULES]
    assert len(set(ids)) == 6 and all(re.fullmatch(r"2025122810000[1-6]_Init", i) for i in ids)


def test_reference_has_the_rules_that_apply_to_every_table():
    for module in reference_catalog.MODULE_NAMES:
        for table, shape in reference_catalog.module_tables(module).items():
            id_column = shape["columns"][0]
            assert id_column["name"] == "Id" and id_column["not_null"]
            assert shape["primary_key"] == {"name": f"PK_{table}", "columns": ["Id"]}
            if table == "DataProtectionKeys":
                assert id_column["identity"] == "by default"
                continue
            assert (id_column["default"] is None) == table.startswith("Archived"), table
            tail = [(c["name"], c["type"], c["not_null"]) for c in shape["columns"] if c["name"] in (
                "RowVersion", "CreatedDateTime", "UpdatedDateTime")]
            assert tail == [("RowVersion", "bytea", False), ("CreatedDateTime", "timestamp with time zone", True),
                            ("UpdatedDateTime", "timestamp with time zone", False)]


def test_only_idempotent_requests_has_a_unique_index():
    unique = [(module, table, index["name"])
              for module in reference_catalog.MODULE_NAMES
              for table, shape in reference_catalog.module_tables(module).items()
              for index in shape["indexes"] if index["unique"]]
    assert unique == [("auditlog", "IdempotentRequests", "IX_IdempotentRequests_RequestType_RequestId")]


def test_diff_is_empty_for_equal_catalogs_and_names_each_difference():
    expected = reference_catalog.legacy_database("identity")
    assert catalog.diff(expected, copy.deepcopy(expected)) == []
    actual = copy.deepcopy(expected)
    actual["Users"]["columns"][1]["type"] = "character varying(256)"
    actual["Users"]["columns"].reverse()
    del actual["UserTokens"]
    actual["UserRoles"]["foreign_keys"][0]["on_delete"] = "NO ACTION"
    actual["UserClaims"]["indexes"] = []
    actual["Roles"]["primary_key"] = None
    lines = catalog.diff(expected, actual, "Identity")
    assert lines[0] == "Identity: missing table UserTokens"
    assert "Identity: Users.UserName: type expected 'text', actual 'character varying(256)'" in lines
    assert any(line.startswith("Identity: Users: columns expected ['Id', ") for line in lines)
    assert any("foreign key FK_UserRoles_Roles_RoleId expected" in line for line in lines)
    assert "Identity: UserClaims: missing index IX_UserClaims_UserId" in lines
    assert any(line.startswith("Identity: Roles: primary key expected") for line in lines)
    assert len(lines) == 6


def test_volume_is_linear_in_scale_and_never_empty():
    small, large = legacy_data.volume(0.01), legacy_data.volume(1)
    assert large == legacy_data.VOLUME_PER_SCALE_UNIT
    assert all(count >= 1 for count in legacy_data.volume(0.00001).values())
    assert small["product_outbox"] * 100 == large["product_outbox"]
