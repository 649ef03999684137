"""Which pg_dump and pg_restore run: versions read from their output, the closest fitting major chosen."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils import pgclient
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal

# -- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, major", [
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", (15,)),
    ("pg_dump (PostgreSQL) 17.2\n", (17,)),
    ("pg_dump (PostgreSQL) 18beta1\n", (18,)),
    ("pg_dump (PostgreSQL) 9.6.24\n", (9, 6)),
])
def test_program_versions_are_read_as_majors(text, major):
    assert pgclient.parse_program_version(text) == major


def test_unreadable_version_is_an_error():
    with pytest.raises(pgclient.ClientProgramError, match="cannot read a PostgreSQL version"):
        pgclient.parse_program_version("command not found")


def test_full_version_string_is_kept_for_the_manifest():
    assert pgclient.program_version_string("pg_dump (PostgreSQL) 15.18 (Debian)") == "15.18"


@pytest.mark.parametrize("num, major", [(150018, (15,)), (100000, (10,)), (90624, (9, 6)), (170002, (17,))])
def test_server_version_num_to_major(num, major):
    assert pgclient.server_major(num) == major


def test_older_pg_dump_is_refused_with_versions_and_path():
    problem = pgclient.pg_dump_version_problem("/usr/lib/postgresql/14/bin/pg_dump", (14,), 150018)
    assert "/usr/lib/postgresql/14/bin/pg_dump" in problem
    assert "pg_dump 14" in problem and "PostgreSQL 15" in problem
    assert "pg_dump_path" in problem


@pytest.mark.parametrize("dump_major", [(15,), (16,)])
def test_same_or_newer_pg_dump_is_fine(dump_major):
    assert pgclient.pg_dump_version_problem("/x/pg_dump", dump_major, 150018) is None


def test_pre_10_pg_dump_against_a_10_server_is_refused():
    assert pgclient.pg_dump_version_problem("/x/pg_dump", (9, 6), 100005) is not None


def test_closest_major_at_or_above_the_server_is_chosen():
    candidates = [("/v17/pg_dump", (17,)), ("/v14/pg_dump", (14,)), ("/v15/pg_dump", (15,)),
                  ("/usr/bin/pg_dump", (17,))]
    assert pgclient.choose_pg_dump(candidates, 150018) == "/v15/pg_dump"
    assert pgclient.choose_pg_dump(candidates, 160000) == "/v17/pg_dump"


def test_no_fitting_pg_dump_names_every_candidate():
    with pytest.raises(pgclient.ClientProgramError) as caught:
        pgclient.choose_pg_dump([("/v13/pg_dump", (13,)), ("/v14/pg_dump", (14,))], 150018)
    assert "/v13/pg_dump (13)" in str(caught.value) and "/v14/pg_dump (14)" in str(caught.value)
    assert "PostgreSQL 15" in str(caught.value)


def test_no_pg_dump_at_all():
    with pytest.raises(pgclient.ClientProgramError, match="candidates: none"):
        pgclient.choose_pg_dump([], 150018)


def test_the_closest_major_at_or_above_wins_and_the_earlier_on_a_tie():
    candidates = [("/a", (17,)), ("/b", (15,)), ("/c", (15,)), ("/d", (14,))]
    assert pgclient.closest_major(candidates, (15,)) == "/b"
    assert pgclient.closest_major(candidates, (16,)) == "/a"
    assert pgclient.closest_major(candidates, (18,)) is None
    assert pgclient.closest_major([], (15,)) is None


def test_an_archive_is_read_by_the_major_of_the_pg_dump_that_wrote_it():
    assert pgclient.archive_major({"pg_dump_version": "15.18"}) == (15,)
    assert pgclient.archive_major({"pg_dump_version": "9.6.24"}) == (9, 6)
    with pytest.raises(pgclient.ClientProgramError, match="cannot read a PostgreSQL version"):
        pgclient.archive_major({})


# -- the installed programs -----------------------------------------------------------------


def run(argv, env=None, before_communicate=None):
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout, completed.stderr


def install(bindir, program, version):
    """A stand-in client program that prints its version, as the real ones do."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / program
    path.write_text(f"#!/bin/sh\necho '{program} (PostgreSQL) {version}'\n")
    path.chmod(0o755)
    return str(path)


def test_a_given_pg_dump_comes_with_the_pg_restore_beside_it(tmp_path):
    pg_dump = install(tmp_path / "16" / "bin", "pg_dump", "16.4")
    pg_restore = install(tmp_path / "16" / "bin", "pg_restore", "16.4")
    journal = QueryJournal(run)
    programs = pgclient.locate_dump_programs(pg_dump, 150018, journal)
    assert (programs.pg_dump, programs.pg_dump_major, programs.pg_dump_version, programs.pg_restore) == (
        pg_dump, (16,), "16.4", pg_restore)
    assert journal.commands == [[pg_dump, "--version"], [pg_restore, "--version"]]


@pytest.mark.parametrize("dump, restore, refusal", [
    ("14.13", "14.13", "is pg_dump 14, older than the source server"),
    ("16.4", None, "no pg_restore next to"),
    ("16.4", "15.8", "could not read the archives"),
], ids=["pg_dump older than the server", "no pg_restore beside it", "pg_restore older than pg_dump"])
def test_a_given_pg_dump_is_refused_unless_it_and_its_pg_restore_fit(tmp_path, dump, restore, refusal):
    pg_dump = install(tmp_path / "bin", "pg_dump", dump)
    if restore:
        install(tmp_path / "bin", "pg_restore", restore)
    with pytest.raises(pgclient.ClientProgramError, match=refusal):
        pgclient.locate_dump_programs(pg_dump, 150018, QueryJournal(run))


def test_the_pg_restore_beside_the_writer_reads_the_archives(tmp_path):
    writer = install(tmp_path / "15" / "bin", "pg_dump", "15.8")
    beside = install(tmp_path / "15" / "bin", "pg_restore", "15.8")
    archives = [{"pg_dump_path": writer, "pg_dump_version": "15.8"}]
    assert pgclient.locate_pg_restore(None, archives, QueryJournal(run)) == beside


def test_a_given_pg_restore_too_old_for_the_archives_is_refused_naming_it(tmp_path):
    old = install(tmp_path / "14" / "bin", "pg_restore", "14.13")
    archives = [{"pg_dump_version": "15.8"}, {"pg_dump_version": "16.2"}]
    with pytest.raises(pgclient.ClientProgramError) as caught:
        pgclient.locate_pg_restore(old, archives, QueryJournal(run))
    assert str(caught.value) == (f"no pg_restore of PostgreSQL 16 or newer found (tried: {old}); install the client "
                                 "programs or set pg_restore_path")


def test_a_missing_given_pg_restore_is_refused(tmp_path):
    with pytest.raises(pgclient.ClientProgramError, match="tried: none"):
        pgclient.locate_pg_restore(str(tmp_path / "pg_restore"), [{"pg_dump_version": "15.8"}], QueryJournal(run))
