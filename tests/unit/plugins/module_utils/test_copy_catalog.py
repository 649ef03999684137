"""One table's copy as the survey describes it (copy_catalog.TableJob), without a server."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_catalog import TableJob

MODULE = {"name": "Product", "source_database": "ClassifiedAds_Product", "source_schema": "public"}


def job(source_table="Products", target_schema="product", target_table="Products"):
    return TableJob(MODULE, copy_plan.TableMapping(source_table, target_schema, target_table, False), None,
                    (16400, "r", 8192, 24576, True, None, None, False, False, True))


def test_a_job_names_both_tables_as_messages_show_them():
    products = job()
    assert products.source_label == 'ClassifiedAds_Product:public."Products"'
    assert products.target_label == 'product."Products"'


def test_hostile_names_are_quoted_in_labels():
    hostile = job(HOSTILE, HOSTILE, HOSTILE)
    assert hostile.source_label == 'ClassifiedAds_Product:public."a""; DROP TABLE x; --"'
    assert hostile.target_label == '"a""; DROP TABLE x; --"."a""; DROP TABLE x; --"'


@pytest.mark.parametrize("action, loads", [
    (None, False),
    (copy_plan.SKIP_COMPLETE, False),
    (copy_plan.COPY, True),
    (copy_plan.TRUNCATE_AND_COPY, True),
])
def test_a_job_loads_its_table_only_when_it_copies(action, loads):
    products = job()
    products.action = action
    assert products.loads is loads


def test_the_result_of_a_surveyed_job_reports_sizes_and_no_format_until_columns_match():
    products = job()
    assert products.result() == {
        "module": "Product", "source_database": "ClassifiedAds_Product", "source_table": "Products",
        "target_schema": "product", "target_table": "Products", "partition_of": None, "rows": None, "bytes": None,
        "source_size": 8192, "seconds": None, "status": None, "format": None, "null_policy": {}, "quarantined": None,
    }
    products.match = copy_plan.ColumnMatch(["Id"], "text")
    products.rows, products.bytes, products.seconds, products.status = 2, 40, 0.1, "copied"
    assert products.result()["format"] == "text"
    assert (products.result()["rows"], products.result()["status"]) == (2, "copied")
