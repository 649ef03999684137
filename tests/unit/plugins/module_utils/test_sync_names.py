"""Online mode's names: slot and publication names PostgreSQL accepts and that never meet, whatever the
run id and database names; recognising ours among other slots; the applier's files."""

from __future__ import annotations

import re

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names as n
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

DATABASES = ["ClassifiedAds_Product", "classifiedads_product", "ClassifiedAds-Product", "a/b", "Ä" * 70,
             "x" * 63, "x" * 63 + "y", "_", "1"]


def test_slot_names_are_valid_and_distinct():
    names = set()
    for run_id in ("20261205T081000Z", "20261205T081000Z-2", "r"):
        for database in DATABASES:
            name = n.slot_name(run_id, database)
            assert re.match(r"^[a-z0-9_]{1,63}\Z", name), name
            assert n.is_ours(name) and n.of_run(name, run_id)
            names.add(name)
    assert len(names) == 3 * len(DATABASES)


def test_readable_part_names_the_database():
    assert n.slot_name("run-1", "ClassifiedAds_Product").endswith("_classifiedads_product")
    assert n.publication_name("run-1", "ClassifiedAds_Product") == n.slot_name("run-1", "ClassifiedAds_Product")


def test_ours_and_not_ours():
    name = n.slot_name("run-1", "ClassifiedAds_Product")
    assert not n.of_run(name, "run-2")
    assert not n.is_ours(name, prefix="other")
    for foreign in ("classifiedads", "classifiedads_product", "pg_16384_sync_1", "", None):
        assert not n.is_ours(foreign)
    custom = n.slot_name("run-1", "db", prefix="acme_sync")
    assert custom.startswith("acme_sync_") and n.is_ours(custom, "acme_sync")


@pytest.mark.parametrize("prefix", ["", "Classified", "1abc", "a-b", "a" * 21, None])
def test_bad_prefix_names_the_fix(prefix):
    with pytest.raises(ConsolidationError, match="consolidation_sync_slot_prefix"):
        n.slot_name("run-1", "db", prefix=prefix)


def test_applier_files_stay_in_the_sync_directory():
    files = n.applier_files("/runs/r1", "../a/b")
    assert set(files) == {"pid", "log", "status"}
    for path in files.values():
        assert path.startswith("/runs/r1/sync/") and "/" not in path[len("/runs/r1/sync/"):]
    assert n.applier_files("/r", "a/b") != n.applier_files("/r", "a_b")
