"""The progress line of a long copy (module_utils/progress.py): what it says for given figures."""

from __future__ import annotations

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.progress import (
    DumpSample,
    Sample,
    VerifySample,
    backup_line,
    duration,
    measured_jobs,
    progress_line,
    seconds_left,
    verify_line,
)

MB = 1024 * 1024


def sample(done=1, total=4, copied=100 * MB, in_flight=0, size_done=100 * MB, size_total=400 * MB):
    return Sample(done, total, copied, in_flight, size_done, size_total)


def test_the_estimate_is_what_is_left_at_the_rate_so_far():
    # 100 MB in 10 s: the 300 MB left take 30 s.
    assert seconds_left(sample(), 10) == pytest.approx(30)


def test_bytes_in_flight_count_as_moved_and_as_no_longer_left():
    # 150 MB in 10 s (15 MB/s); 400 - 100 done - 50 in flight = 250 MB left.
    assert seconds_left(sample(in_flight=50 * MB), 10) == pytest.approx(250 / 15)


def test_there_is_no_estimate_before_anything_moved():
    assert seconds_left(sample(done=0, copied=0, size_done=0), 10) is None
    assert seconds_left(sample(), 0) is None


def test_an_earlier_invocations_tables_count_as_done_but_not_as_this_runs_rate():
    # A resumed run: two tables (200 MB) were copied before, 50 MB moved now in 10 s.
    line = progress_line("data_copy", sample(done=2, copied=0, in_flight=50 * MB, size_done=200 * MB), 10)
    assert line == "data_copy: 2/4 tables, 50.0 MB copied (50.0 MB in flight) of about 400.0 MB, 5.0 MB/s, ETA 30s"


def test_the_line_has_counts_sizes_rate_and_estimate():
    assert progress_line("data_copy", sample(), 10) == \
        "data_copy: 1/4 tables, 100.0 MB copied of about 400.0 MB, 10.0 MB/s, ETA 30s"


def test_an_unknown_estimate_says_so():
    assert progress_line("data_copy", sample(done=0, copied=0, size_done=0), 3).endswith("0.0 MB/s, ETA unknown")


def test_once_every_table_is_loaded_the_line_says_what_is_left_to_do():
    line = progress_line("data_copy", sample(done=4, copied=400 * MB, size_done=400 * MB), 40)
    assert line.endswith("10.0 MB/s, finishing (foreign keys, sequences, materialized views)")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (42.4, "42s"), (185, "3m05s"), (3720, "1h02m")])
def test_durations_are_short(seconds, text):
    assert duration(seconds) == text


def dump(current="Legacy", position=2, read=150 * MB, current_read=50 * MB, passed=100 * MB, total=500 * MB):
    return DumpSample(3, current, position, read, current_read, passed, total)


def test_a_backup_line_names_the_database_being_dumped_and_its_place():
    # 150 MB in 10 s; 500 - 100 passed - 50 of the current one = 350 MB left at 15 MB/s.
    assert backup_line("backup_set", dump(), 10) == (
        'backup_set: dumping "Legacy" (2/3 databases), 150.0 MB read of about 500.0 MB, 15.0 MB/s, ETA 23s')


def test_a_database_kept_from_an_earlier_run_counts_as_passed_not_as_read():
    # The first database's archive was still good: nothing was read from it, it is no longer left either.
    line = backup_line("backup_set", dump(read=50 * MB, current_read=50 * MB, passed=100 * MB), 10)
    assert line.endswith("50.0 MB read of about 500.0 MB, 5.0 MB/s, ETA 1m10s")


def test_between_two_dumps_the_backup_line_says_so_without_an_estimate():
    line = backup_line("backup_set", dump(current=None, position=0), 10)
    assert line == ("backup_set: 3 databases, no dump running (an archive is read back, or the next one starts), "
                    "150.0 MB read of about 500.0 MB, 15.0 MB/s")


def test_jobs_before_the_last_one_running_are_measured_unless_they_run_too():
    # Started in the order 4, 2, 0, 1, 3: 0 and 1 run, so 4 and 2 are done; 3 has not started.
    assert measured_jobs([4, 2, 0, 1, 3], {0, 1}) == {4, 2}


def test_nothing_counts_as_measured_while_nothing_runs():
    # Before the first job or after the last one: the order alone cannot tell which.
    assert measured_jobs([0, 1, 2], set()) == set()


def test_a_verification_line_says_what_is_measured_and_the_time_left_at_the_rate_so_far():
    # 100 MB scanned in 10 s: the 300 MB left take 30 s.
    line = verify_line("row_count_diff", VerifySample(3, 12, 2, 100 * MB, 400 * MB), 10)
    assert line == ("row_count_diff: 3/12 tables measured (2 being measured), 100.0 MB of about 400.0 MB scanned, "
                    "10.0 MB/s, ETA 30s")


def test_a_verification_line_between_measurements_gives_no_estimate():
    line = verify_line("row_count_diff", VerifySample(0, 2, 0, 0, 400 * MB), 5)
    assert line == ("row_count_diff: 0/2 tables measured, none being measured now (catalogs, sequences or the "
                    "schema are read), 0.0 MB of about 400.0 MB scanned, 0.0 MB/s")
    assert "ETA unknown" in verify_line("row_count_diff", VerifySample(0, 2, 1, 0, 400 * MB), 5)
