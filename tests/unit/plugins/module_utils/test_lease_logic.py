"""The pure logic of the lease and of finding the controller: /proc parsing, ancestry, liveness, decisions."""

from __future__ import annotations

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils import controller, lease
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import run_directory

HERE = {"host": "ops1", "machine_id": "m1", "boot_id": "b1", "pid_namespace": "pid:[1]"}
ME = dict(HERE, pid=100, pid_started=5000)


def stat_line(pid, comm, ppid, started, state="S"):
    # Fields 3.. of /proc/<pid>/stat: state, ppid, then 17 others, then starttime (field 22).
    middle = " ".join(["0"] * 17)
    return f"{pid} ({comm}) {state} {ppid} {middle} {started} 0 0"


def test_stat_fields_are_counted_from_the_last_parenthesis():
    assert controller.parse_stat(stat_line(7, "a) b (c", 3, 991)) == (3, 991, "S")
    assert controller.parse_stat(stat_line(7, "ansible-playboo", 1, 5, state="Z")) == (1, 5, "Z")


def test_a_real_stat_line_parses():
    line = ("17806 (cat) R 17804 17804 9597 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 1025422 3133440 382 "
            "18446744073709551615 93939193487360 0")
    assert controller.parse_stat(line) == (17804, 1025422, "R")


@pytest.mark.parametrize("argv, expected", [
    (["/usr/bin/python3", "/opt/venv/bin/ansible-playbook", "-i", "inv", "site.yml"], True),
    (["/usr/local/bin/ansible-playbook", "site.yml"], True),
    (["/bin/sh", "-c", "python3 /root/.ansible/tmp/ansible-playbook-x/AnsiballZ_data_copy.py"], False),
    (["/usr/bin/python3", "/root/.ansible/tmp/AnsiballZ_data_copy.py"], False),
    (["pytest", "-k", "ansible-playbook"], False),
    ([""], False),
])
def test_ansible_playbook_is_recognised_by_its_program_not_its_arguments(argv, expected):
    assert controller.is_ansible_playbook(argv) is expected


PLAYBOOK = ["/venv/bin/python", "/venv/bin/ansible-playbook", "site.yml"]
PROCESSES = {
    # pid: (ppid, start, argv)
    50: (1, 10, ["/bin/bash"]),
    60: (50, 20, PLAYBOOK),                                     # ansible-playbook
    70: (60, 30, PLAYBOOK),                                     # its worker (forked: same command line)
    80: (70, 40, ["/bin/sh", "-c", "python AnsiballZ_data_copy.py"]),
    90: (80, 50, ["python", "AnsiballZ_data_copy.py"]),         # the module
}


def test_the_chain_runs_through_the_workers_up_to_the_outermost_ansible_playbook():
    assert controller.ancestry(90, PROCESSES.get) == [(80, 40), (70, 30), (60, 20)]


def test_a_module_not_started_by_ansible_playbook_has_no_chain():
    processes = {50: (1, 10, ["/bin/bash"]), 51: (50, 11, ["pytest"]), 52: (51, 12, ["python", "-m", "mod"])}
    assert controller.ancestry(52, processes.get) is None
    orphan = {90: (80, 50, ["python", "AnsiballZ_data_copy.py"])}  # its parent is gone already
    assert controller.ancestry(90, orphan.get) is None


def started_in(table):
    return table.get


@pytest.mark.parametrize("holder, started, expected", [
    (ME, {100: 5000}, controller.ALIVE),
    (ME, {}, controller.GONE),                                       # the pid is free
    (ME, {100: 7777}, controller.GONE),                              # the pid is another process now
    (dict(ME, boot_id="b0"), {100: 5000}, controller.GONE),          # the machine restarted since
    (dict(ME, host="ops2"), {}, controller.UNKNOWN),                 # another host: cannot be checked
    (dict(ME, machine_id="m2"), {}, controller.UNKNOWN),             # same name, another machine
    (dict(ME, pid_namespace="pid:[2]"), {}, controller.UNKNOWN),     # another container of this machine
    (dict(ME, pid=None), {}, controller.UNKNOWN),
])
def test_only_a_holder_of_this_machine_boot_and_namespace_can_be_proven_gone(holder, started, expected):
    assert controller.holder_state(holder, HERE, started_in(started)) == expected


def test_the_lease_is_acquired_kept_or_taken_over_only_from_a_gone_holder_or_with_the_flag():
    other = dict(ME, pid=200, pid_started=9, run_id="first", acquired_at="2026-12-04T23:00:00Z")
    assert lease.decide("T", None, ME, None) == lease.ACQUIRE
    assert lease.decide("T", dict(ME, run_id="first"), ME, controller.ALIVE) == lease.KEEP
    assert lease.decide("T", other, ME, controller.GONE) == lease.TAKE_OVER
    assert lease.decide("T", other, ME, controller.ALIVE, takeover=True) == lease.TAKE_OVER
    assert lease.decide("T", other, ME, controller.UNKNOWN, takeover=True) == lease.TAKE_OVER
    for state, why in ((controller.ALIVE, "which is still running"),
                       (controller.UNKNOWN, "whose process cannot be checked from this host")):
        with pytest.raises(lease.LeaseHeld) as refused:
            lease.decide("Target DB", other, ME, state)
        message = str(refused.value)
        assert message.startswith('target database "Target DB" is leased to run first on host ops1 '
                                  "(ansible-playbook pid 200, since 2026-12-04T23:00:00Z")
        assert why in message and "consolidation_lease_takeover=true" in message
        assert refused.value.details["holder"]["state"] == state


def test_run_ended_takes_over_only_the_same_run_from_a_holder_that_cannot_be_checked():
    other = dict(ME, pid=200, pid_started=9, run_id="R1", acquired_at="2026-12-04T23:00:00Z")
    assert lease.decide("T", other, ME, controller.UNKNOWN, run_id="R1", run_ended=True) == lease.TAKE_OVER
    refusals = (
        (controller.UNKNOWN, "R1", False, "rerun with -e consolidation_lease_run_ended=true"),  # the hint, no more
        (controller.UNKNOWN, "R2", True, "takes over only a lease of run R2 itself"),  # another run's lease
        (controller.ALIVE, "R1", True, "which is still running"),  # seen alive: that job has not ended
        (controller.UNKNOWN, None, True, "takes over only a lease of run (no run id) itself"),
    )
    for state, run_id, run_ended, said in refusals:
        with pytest.raises(lease.LeaseHeld) as refused:
            lease.decide("T", other, ME, state, run_id=run_id, run_ended=run_ended)
        assert said in str(refused.value), (state, run_id, str(refused.value))
        assert (state == controller.UNKNOWN) == ("consolidation_lease_run_ended" in str(refused.value))
    # A lease recorded without a run id is no run's own.
    with pytest.raises(lease.LeaseHeld):
        lease.decide("T", dict(other, run_id=None), ME, controller.UNKNOWN, run_id=None, run_ended=True)


def test_a_holder_without_a_pid_is_never_this_controller():
    assert not lease.same_holder(dict(ME, pid=None), dict(ME, pid=None))
    assert not lease.same_holder(dict(ME, pid_started=1), ME)
    assert lease.same_holder(dict(ME, run_id="x", heartbeat="later"), ME)


def test_a_module_works_beside_no_lease_its_own_or_a_gone_holder_only():
    other = dict(ME, pid=200)
    assert lease.admits(None, ME, None)
    assert lease.admits(ME, ME, controller.ALIVE)
    assert lease.admits(other, ME, controller.GONE)
    assert not lease.admits(other, ME, controller.ALIVE)
    assert not lease.admits(other, ME, controller.UNKNOWN)


def test_the_lock_key_is_a_stable_pair_of_32_bit_integers_per_database():
    assert lease.lock_key("ClassifiedAds") == lease.lock_key("ClassifiedAds")
    assert lease.lock_key("ClassifiedAds") != lease.lock_key("classifiedads")
    for name in ("ClassifiedAds", "a\"; DROP TABLE x; --", "é" * 40, ""):
        classid, key = lease.lock_key(name)
        assert classid == lease.LOCK_CLASS and -(2 ** 31) <= key < 2 ** 31


def test_the_lock_session_name_fits_postgresql_and_keeps_whole_characters():
    name = lease.application_name("r" * 64, dict(ME, host="h\u00e9"))
    assert name.startswith("consolidation run rrr") and len(name.encode("utf-8")) <= 63
    assert lease.application_name("20261204", ME) == "consolidation run 20261204 on ops1 pid 100"
    cut = lease.application_name("é" * 40, ME)
    assert len(cut.encode("utf-8")) <= 63 and cut.endswith("é")


def test_the_failure_record_goes_where_the_options_point_into_the_run_directory():
    assert run_directory({"run_dir": "/runs/r1", "progress_log": "/elsewhere/x.log"}) == "/runs/r1"
    assert run_directory({"progress_log": "/runs/r1/data_copy.log"}) == "/runs/r1"
    assert run_directory({"log_file": "/runs/r1/migrator.log"}) == "/runs/r1"
    assert run_directory({"target_database": "x"}) is None
