"""The COPY statements of a table and the pipe's reading end (copy_stream), without a server."""

from __future__ import annotations

import io
import threading

import pytest
from constants import HOSTILE
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_catalog import TableJob
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import ColumnMatch, TableMapping
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_stream import (
    Aborted,
    CountingReader,
    copy_in_statement,
    copy_out_statement,
)

MODULE = {"name": "Product", "source_database": "ClassifiedAds_Product", "source_schema": "public"}


def job(target_relkind="r", columns=("Id", "Code"), copy_format="binary", table="Products"):
    made = TableJob(MODULE, TableMapping(table, "product", table, False), None,
                    (16400, "r", 8192, 16384, True, None, None, False, False, True))
    made.target_relkind = target_relkind
    made.match = ColumnMatch(list(columns), copy_format)
    return made


def text(statement):
    """A composed statement as libpq would quote it: every identifier in double quotes."""
    if isinstance(statement, sql.Composed):
        return "".join(text(part) for part in statement.seq)
    if isinstance(statement, sql.Identifier):
        return ".".join('"' + part.replace('"', '""') + '"' for part in statement.strings)
    return statement.string


# -- statements --------------------------------------------------------------------------------------

def test_a_plain_source_table_is_read_by_copy_itself_in_the_matched_column_order():
    assert text(copy_out_statement(job(columns=("Code", "Id")))) == \
        'COPY "public"."Products" ("Code", "Id") TO STDOUT (FORMAT binary)'


def test_a_plain_target_table_is_loaded_frozen():
    assert text(copy_in_statement(job(), freeze=True)) == \
        'COPY "product"."Products" ("Id", "Code") FROM STDIN (FORMAT binary, FREEZE)'


@pytest.mark.parametrize("target_relkind, freeze", [("p", True), ("r", False)])
def test_freeze_is_left_out_for_a_partitioned_target_or_when_not_asked(target_relkind, freeze):
    assert text(copy_in_statement(job(target_relkind=target_relkind), freeze=freeze)) == \
        'COPY "product"."Products" ("Id", "Code") FROM STDIN (FORMAT binary)'


def test_both_statements_use_the_matched_format():
    text_job = job(copy_format="text")
    assert text(copy_out_statement(text_job)).endswith("(FORMAT text)")
    assert text(copy_in_statement(text_job, freeze=True)).endswith("(FORMAT text, FREEZE)")


def test_hostile_names_stay_identifiers():
    hostile = job(columns=(HOSTILE,), table=HOSTILE)
    assert text(copy_out_statement(hostile)) == \
        'COPY "public"."a""; DROP TABLE x; --" ("a""; DROP TABLE x; --") TO STDOUT (FORMAT binary)'
    assert text(copy_in_statement(hostile, freeze=True)) == \
        'COPY "product"."a""; DROP TABLE x; --" ("a""; DROP TABLE x; --") FROM STDIN (FORMAT binary, FREEZE)'


# -- the pipe's reading end --------------------------------------------------------------------------

def test_the_reader_counts_the_bytes_it_hands_on():
    reader = CountingReader(io.BytesIO(b"x" * 10), threading.Event())
    assert reader.read(4) == b"xxxx"
    assert reader.read() == b"x" * 6
    assert reader.read(4) == b""
    assert reader.bytes == 10


def test_the_reader_stops_once_the_run_is_aborted():
    abort = threading.Event()
    reader = CountingReader(io.BytesIO(b"x" * 10), abort)
    reader.read(4)
    abort.set()
    with pytest.raises(Aborted):
        reader.read(4)
    assert reader.bytes == 4


def test_closing_the_reader_closes_the_pipe_end():
    handle = io.BytesIO(b"")
    CountingReader(handle, threading.Event()).close()
    assert handle.closed
