"""devkit.writer_load against real legacy databases: its ledger proves writes, and catches a lost one."""

from __future__ import annotations

import time

import pytest
from devkit import legacy
from devkit.writer_load import TABLE_LOADS, WriterLoad
from psycopg2 import sql

pytestmark = pytest.mark.integration

PREFIX = "WriterLoad"


def _silent(_line):
    pass


@pytest.fixture(scope="module")
def legacy_dbs(source_cluster):
    legacy.create(source_cluster, 0.01, PREFIX, drop_existing=True, out=_silent)
    yield source_cluster
    legacy.drop(source_cluster, PREFIX)


@pytest.fixture(scope="module")
def finished_load(legacy_dbs):
    load = WriterLoad(legacy_dbs, rate=300, prefix=PREFIX).start()
    time.sleep(3)
    stats = load.stop()
    return load, stats


def _recorded(load, module_name, present):
    """The Ids of ``module_name``'s recorded rows whose last state is present (or deleted)."""
    writer = next(w for w in load.writers if w.database == f"{PREFIX}_{module_name}")
    return [key for (_table, key), states in writer.ledger.states.items() if (states[-1] is not None) is present]


def test_every_committed_write_is_in_the_legacy_databases(finished_load):
    load, stats = finished_load
    assert stats.inserts > 0 and stats.updates > 0 and stats.deletes > 0, stats
    assert stats.refused == 0 and stats.uncertain == 0, stats
    report = load.check_legacy()
    assert report.ok, report.summary()
    assert report.checked == report.present + report.absent > stats.inserts / 2
    assert report.absent >= 1


def test_the_check_finds_a_lost_insert_a_lost_update_and_a_lost_delete(legacy_dbs, finished_load):
    load = finished_load[0]
    database = f"{PREFIX}_Configuration"
    table = TABLE_LOADS["Configuration"].table
    lost, changed = _recorded(load, "Configuration", True)[:2]
    deleted = _recorded(load, "Configuration", False)[0]
    target = sql.Identifier("public", table)
    legacy.query(legacy_dbs, database, sql.SQL('DELETE FROM {} WHERE "Id" = %s').format(target), (lost,))
    legacy.query(legacy_dbs, database, sql.SQL('UPDATE {} SET "Description" = %s WHERE "Id" = %s').format(target),
                 ("not what the load wrote", changed))
    legacy.query(legacy_dbs, database, sql.SQL('INSERT INTO {} ("Id", "IsSensitive", "CreatedDateTime")'
                                               " VALUES (%s, false, now())").format(target), (deleted,))
    report = load.check_legacy()
    assert not report.ok
    assert report.missing == [(database, table, lost)]
    assert report.stale == [(database, table, changed)]
    assert report.resurrected == [(database, table, deleted)]
    assert str(lost) in report.summary()


def test_a_read_only_database_stalls_the_load_without_recording(legacy_dbs):
    database = f"{PREFIX}_Product"
    identifier = sql.Identifier(database)
    legacy.query(legacy_dbs, "postgres", sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
        identifier))
    try:
        load = WriterLoad(legacy_dbs, rate=120, prefix=PREFIX, seed=5).start()
        time.sleep(2)
        stats = load.stop()
    finally:
        legacy.query(legacy_dbs, "postgres", sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
            identifier))
    product = next(w for w in load.writers if w.database == database)
    assert product.stats.refused > 0 and product.stats.committed == 0
    assert not product.ledger.states
    assert stats.committed > 0
    assert load.check_legacy().ok
