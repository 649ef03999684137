"""What a completed run keeps of its state schema, and when it must keep the schema itself."""

from __future__ import annotations

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.run_state import (
    keep_reason,
    quarantine_record,
    recorded_proof,
    recorded_quarantine,
    state_record,
    state_schemas,
)

COPIED = {"run_id": "R", "source_database": "Legacy_Product", "source_table": "Products", "rows": 3}
QUARANTINED = {"source_table": "UserClaims", "key": {"Id": 1}, "row": {"Id": 1, "UserId": None}, "run_id": "R"}


def test_the_lease_schema_is_looked_at_whatever_the_copy_state_schema():
    assert state_schemas("_consolidation") == ["_consolidation"]
    assert state_schemas(HOSTILE) == [HOSTILE, "_consolidation"]


def test_foreign_keys_still_deferred_keep_the_state_naming_each():
    found = {"_consolidation": {"deferred_ddl": [{"target_schema": "identity", "target_table": HOSTILE,
                                                  "constraint_name": "FK_x"}]}}
    reason = keep_reason(found)
    assert reason.startswith("1 foreign key(s) the copy dropped for the load are not back yet")
    assert 'identity."a""; DROP TABLE x; --"."FK_x"' in reason
    assert keep_reason({"_consolidation": {"deferred_ddl": [], "copied_tables": [COPIED]}}) is None


def test_the_record_keeps_the_copy_and_points_at_the_quarantined_rows():
    found = {"_consolidation": {"copied_tables": [COPIED], "quarantined_rows": [QUARANTINED, QUARANTINED],
                                "lease": []}}
    record = state_record("R", "ClassifiedAds", found, "/runs/R/quarantined_rows.json", "2026-12-05T02:00:00Z")
    assert record["copied_tables"] == [COPIED] and record["schemas"] == ["_consolidation"]
    assert record["quarantined_rows"] == {"count": 2, "file": "/runs/R/quarantined_rows.json"}
    assert quarantine_record("R", "ClassifiedAds", found, "now")["rows"] == [QUARANTINED, QUARANTINED]


def test_without_quarantined_rows_there_is_no_file_to_point_at():
    record = state_record("R", "ClassifiedAds", {"_consolidation": {"lease": []}}, "/q.json", "now")
    assert record["quarantined_rows"] == {"count": 0, "file": None} and record["copied_tables"] == []


def test_the_copy_records_of_this_run_come_back_as_the_live_table_gave_them():
    record = {"copied_tables": [
        dict(COPIED, source_snapshot="00000003-1", source_inserted=5, source_updated=0, source_deleted=1),
        dict(COPIED, source_table="Other", source_snapshot="00000003-1", source_inserted=None, source_updated=None,
             source_deleted=None),
        dict(COPIED, run_id="an-earlier-run", source_table="Old")]}
    assert recorded_proof(record, "R") == {
        ("Legacy_Product", "Products"): {"snapshot": "00000003-1",
                                         "write_counters": {"inserted": 5, "updated": 0, "deleted": 1}},
        ("Legacy_Product", "Other"): {"snapshot": "00000003-1", "write_counters": None}}
    assert recorded_proof(record, "another-run") is None and recorded_proof(None, "R") is None


def test_the_quarantine_of_one_table_is_its_keys_and_digests():
    rows = [dict(QUARANTINED, source_database="Legacy_Identity", source_schema="public", key_text='{"Id": 1}',
                 row_digest=-42),
            dict(QUARANTINED, source_database="Legacy_Identity", source_schema="public", source_table="RoleClaims",
                 key_text='{"Id": 2}', row_digest=7)]
    assert recorded_quarantine(rows, "Legacy_Identity", "public", "UserClaims") == [('{"Id": 1}', -42)]
    assert recorded_quarantine(rows, "Legacy_Identity", "other", "UserClaims") == []


def test_the_record_keeps_online_modes_slots_and_progress():
    slot = {"run_id": "R", "source_database": "Legacy_Product", "slot_name": "classifiedads_x", "copied_at": "now"}
    progress = {"source_database": "Legacy_Product", "applied_lsn": "0/10", "transactions": 4}
    found = {"_consolidation": {"copied_tables": [COPIED], "sync_slots": [slot], "sync_progress": [progress]}}
    record = state_record("R", "ClassifiedAds", found, "/q.json", "now")
    assert record["sync"] == {"sync_slots": [slot], "sync_progress": [progress]}
