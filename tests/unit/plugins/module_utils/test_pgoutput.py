"""pgoutput protocol 1 decoding from bytes laid out as PostgreSQL's proto.c writes them (big-endian, NUL-terminated
strings, 64-bit LSNs, microseconds since 2000-01-01)."""

from __future__ import annotations

import datetime
import struct

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils import pgoutput as p

UTC = datetime.UTC


def string(text):
    return text.encode("utf-8") + b"\0"


def tuple_data(*values):
    """TupleData: Int16 count, then per column 'n', 'u' or 't' + Int32 length + text."""
    out = struct.pack("!H", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is p.UNCHANGED:
            out += b"u"
        else:
            data = value.encode("utf-8")
            out += b"t" + struct.pack("!I", len(data)) + data
    return out


def micros(moment):
    return int((moment - p.POSTGRES_EPOCH).total_seconds() * 1000000)


def test_begin_and_commit_carry_lsns_time_and_xid():
    moment = datetime.datetime(2026, 12, 5, 8, 30, 1, 250000, tzinfo=UTC)
    begin = p.decode(b"B" + struct.pack("!QqI", 0x16B374D848, micros(moment), 4711))
    assert begin == p.Begin(0x16B374D848, moment, 4711)
    commit = p.decode(b"C" + struct.pack("!BQQq", 0, 0x100, 0x128, micros(moment)))
    assert commit == p.Commit(0, 0x100, 0x128, moment)


def test_relation_lists_columns_with_key_flags_types_and_signed_modifiers():
    payload = (b"R" + struct.pack("!I", 16390) + string("public") + string('a"; DROP TABLE x; --') + b"d"
               + struct.pack("!H", 2)
               + b"\x01" + string("Id") + struct.pack("!Ii", 2950, -1)
               + b"\x00" + string("Name") + struct.pack("!Ii", 1043, 24))
    relation = p.decode(payload)
    assert relation == p.Relation(16390, "public", 'a"; DROP TABLE x; --', p.IDENTITY_DEFAULT, (
        p.RelationColumn("Id", 2950, -1, True), p.RelationColumn("Name", 1043, 24, False)))


def test_type_and_origin():
    assert p.decode(b"Y" + struct.pack("!I", 16400) + string("public") + string("mood")) == p.Type(
        16400, "public", "mood")
    assert p.decode(b"O" + struct.pack("!Q", 77) + string("node_a")) == p.Origin(77, "node_a")


def test_insert_values_are_text_null_or_unchanged_and_utf8():
    insert = p.decode(b"I" + struct.pack("!I", 5) + b"N" + tuple_data("1", None, "Zoë", ""))
    assert insert == p.Insert(5, ("1", None, "Zoë", ""))


def test_update_without_old_tuple_with_key_tuple_and_with_full_old_row():
    plain = p.decode(b"U" + struct.pack("!I", 5) + b"N" + tuple_data("1", p.UNCHANGED, "x"))
    assert plain == p.Update(5, None, None, ("1", p.UNCHANGED, "x"))
    assert plain.new[1] is p.UNCHANGED
    key = p.decode(b"U" + struct.pack("!I", 5) + b"K" + tuple_data("1", None, None) + b"N" + tuple_data("2", "a", "b"))
    assert key == p.Update(5, p.OLD_KEY, ("1", None, None), ("2", "a", "b"))
    full = p.decode(b"U" + struct.pack("!I", 5) + b"O" + tuple_data("1", None) + b"N" + tuple_data("1", "b"))
    assert full == p.Update(5, p.OLD_FULL, ("1", None), ("1", "b"))


def test_delete_by_key_or_full_row():
    assert p.decode(b"D" + struct.pack("!I", 9) + b"K" + tuple_data("7", None)) == p.Delete(9, "K", ("7", None))
    assert p.decode(b"D" + struct.pack("!I", 9) + b"O" + tuple_data("7", "z")) == p.Delete(9, "O", ("7", "z"))


@pytest.mark.parametrize("options, cascade, restart", [(0, False, False), (1, True, False), (2, False, True),
                                                       (3, True, True)])
def test_truncate_options_and_relations(options, cascade, restart):
    truncate = p.decode(b"T" + struct.pack("!IBII", 2, options, 5, 9))
    assert truncate == p.Truncate(cascade, restart, (5, 9))


def test_logical_message_is_decoded_so_it_can_be_ignored():
    message = p.decode(b"M" + struct.pack("!BQ", 1, 300) + string("app") + struct.pack("!I", 3) + b"abc")
    assert message == p.Message(True, 300, "app", b"abc")


@pytest.mark.parametrize("payload, words", [
    (b"", "empty"),
    (b"S" + struct.pack("!I", 1), "unknown kind 'S'"),
    (b"B" + struct.pack("!Q", 1), "cut short"),
    (b"I" + struct.pack("!I", 5) + b"N" + struct.pack("!H", 1) + b"b" + struct.pack("!I", 1) + b"x", "kind 'b'"),
    (b"I" + struct.pack("!I", 5) + b"N" + struct.pack("!H", 1) + b"t" + struct.pack("!I", 9) + b"x", "cut short"),
    (b"I" + struct.pack("!I", 5) + b"K" + tuple_data("1"), "without its new tuple"),
    (b"U" + struct.pack("!I", 5) + b"K" + tuple_data("1") + b"X", "without its new tuple"),
    (b"D" + struct.pack("!I", 5) + b"N" + tuple_data("1"), "without its old tuple"),
    (b"Y" + struct.pack("!I", 1) + b"public", "terminating NUL"),
    (b"C" + struct.pack("!BQQq", 0, 1, 2, 3) + b"\0", "1 trailing bytes"),
])
def test_anything_else_is_refused_with_the_reason(payload, words):
    with pytest.raises(p.DecodeError) as caught:
        p.decode(payload)
    assert words in str(caught.value)


def test_lsn_text_round_trip():
    assert p.to_lsn("16/B374D848") == 0x16B374D848
    assert p.format_lsn(0x16B374D848) == "16/B374D848"
    assert p.format_lsn(0) == "0/0" and p.to_lsn("0/0") == 0
