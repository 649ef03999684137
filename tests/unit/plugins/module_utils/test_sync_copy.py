"""The online copy's decision per legacy database: create, keep or recreate its slot (sync_copy.slot_decision)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_copy import (
    CREATE,
    KEEP,
    RECREATE,
    recreate_reason,
    slot_decision,
)

DONE = {"copied_at": datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)}
CUT_OFF = {"copied_at": None}


def test_a_database_without_record_or_slot_gets_its_slot_created():
    assert slot_decision(None, False) == CREATE


def test_a_complete_copy_whose_slot_exists_keeps_it():
    assert slot_decision(DONE, True) == KEEP


@pytest.mark.parametrize("record, slot_exists, reason", [
    (CUT_OFF, True, "did not complete"),  # the snapshot ended with the attempt that was cut off
    (DONE, False, "slot is gone"),  # the stream that continued the copy is lost
    (CUT_OFF, False, "slot is gone"),
    (None, True, "no copy recorded"),  # a slot of this run the copy never recorded (created, then the run died)
])
def test_a_copy_that_cannot_continue_its_slot_is_done_again(record, slot_exists, reason):
    assert slot_decision(record, slot_exists) == RECREATE
    assert reason in recreate_reason(record, slot_exists)
