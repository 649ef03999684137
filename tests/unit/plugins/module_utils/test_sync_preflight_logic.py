"""Online mode's preflight judgement (sync_preflight.sync_problems): pure, on gathered facts."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_preflight import sync_problems

RUN = "r1"
DATABASES = ["Legacy_A", "Legacy_B"]


def facts(**changes):
    base = {"server_version": 150004, "wal_level": "logical", "max_replication_slots": 10, "max_wal_senders": 10,
            "slots_in_use": 0, "senders_in_use": 0, "user": "consolidation", "superuser": False, "replication": True,
            "managed_roles": [], "slots": [],
            "databases": dict((name, {"create": True, "schema": "public", "tables": {"t": (True, True)}})
                              for name in DATABASES)}
    base.update(changes)
    return base


def own_slot(database, active=False):
    return {"slot_name": sync_names.slot_name(RUN, database), "active": active}


def test_a_ready_source_has_no_problem():
    assert sync_problems(facts(), RUN) == []


def test_slots_need_room_for_one_per_legacy_database():
    [problem] = sync_problems(facts(max_replication_slots=3, slots_in_use=2), RUN)
    assert "max_replication_slots = 3 with 2 in use" in problem
    assert "needs 2 more" in problem and "at least 4" in problem


def test_a_reruns_own_slots_are_not_counted_twice():
    slots = [own_slot(name, active=True) for name in DATABASES]
    assert sync_problems(facts(max_replication_slots=2, slots_in_use=2, max_wal_senders=2, senders_in_use=2,
                               slots=slots), RUN) == []


def test_senders_need_room_for_each_applier_stream():
    [problem] = sync_problems(facts(max_wal_senders=2, senders_in_use=1), RUN)
    assert "max_wal_senders = 2 with 1 in use" in problem and "at least 3" in problem


def test_a_managed_services_replication_role_is_enough():
    assert sync_problems(facts(replication=False, managed_roles=["rds_replication"]), RUN) == []
    [problem] = sync_problems(facts(replication=False), RUN)
    assert "ALTER ROLE consolidation REPLICATION" in problem


def test_a_superuser_needs_neither_ownership_nor_create():
    tables = {"t": (False, True)}
    databases = {"Legacy_A": {"create": False, "schema": "public", "tables": tables}}
    assert sync_problems(facts(superuser=True, replication=False, databases=databases), RUN) == []


def test_every_problem_is_reported_at_once_with_the_names_quoted():
    hostile = 'a"; DROP TABLE x; --'
    databases = {"Legacy_A": {"create": False, "schema": "public",
                              "tables": {hostile: (False, False), "fine": (True, True)}}}
    problems = sync_problems(facts(wal_level="replica", replication=False, databases=databases), RUN)
    assert len(problems) == 5
    quoted = '"a""; DROP TABLE x; --"'
    assert sum(quoted in problem for problem in problems) == 2
    assert not any(".fine" in problem for problem in problems)


def test_a_server_older_than_pgoutput_is_refused_alone():
    assert sync_problems({"server_version": 90624, "slots": [], "databases": {}}, RUN) == [
        "the source server runs PostgreSQL 9.6, and online mode needs 10 or later (logical replication with "
        "pgoutput): upgrade it, or consolidate with sync=offline"]
