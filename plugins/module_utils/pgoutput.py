# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A decoder of PostgreSQL's ``pgoutput`` logical replication messages, protocol version 1.

The change applier (:mod:`sync_apply`) reads the stream of a slot with ``decode=False`` and hands
each payload to :func:`decode`, which returns one plain named tuple per message. Nothing here talks
to a server, so every message kind is unit-tested from bytes built by hand. The layout follows
PostgreSQL's "Logical Replication Message Formats" (src/backend/replication/logical/proto.c): all
integers are big-endian, strings are NUL-terminated in the server's encoding, LSNs are 64-bit and
timestamps microseconds since 2000-01-01 UTC.

Column values come as text (the type's output function), ``None`` for NULL, or :data:`UNCHANGED`
for a TOASTed value the update did not touch (the stream does not carry it: the target keeps its own).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import datetime
import struct

from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

POSTGRES_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


class Unchanged(object):
    """The marker of an unchanged TOASTed value ('u'): distinct from NULL and from any text."""

    def __repr__(self):
        return "UNCHANGED"


UNCHANGED = Unchanged()

# Relation message: replica identity setting (pg_class.relreplident) and the key flag of a column.
IDENTITY_DEFAULT, IDENTITY_NOTHING, IDENTITY_FULL, IDENTITY_INDEX = "d", "n", "f", "i"
COLUMN_IS_KEY = 1

# Truncate message option bits.
TRUNCATE_CASCADE = 1
TRUNCATE_RESTART_IDENTITY = 2

# Old tuple kinds of Update and Delete: only the key columns ('K'), or the whole old row ('O', REPLICA IDENTITY FULL).
OLD_KEY, OLD_FULL = "K", "O"

Begin = collections.namedtuple("Begin", "final_lsn commit_time xid")
Commit = collections.namedtuple("Commit", "flags commit_lsn end_lsn commit_time")
Origin = collections.namedtuple("Origin", "lsn name")
RelationColumn = collections.namedtuple("RelationColumn", "name type_oid type_modifier is_key")
Relation = collections.namedtuple("Relation", "relid namespace name replica_identity columns")
Type = collections.namedtuple("Type", "oid namespace name")
Insert = collections.namedtuple("Insert", "relid new")
# old_kind: None (no old tuple: the key did not change), OLD_KEY or OLD_FULL; old: the values or None.
Update = collections.namedtuple("Update", "relid old_kind old new")
Delete = collections.namedtuple("Delete", "relid old_kind old")
Truncate = collections.namedtuple("Truncate", "cascade restart_identity relids")
# A logical decoding message (pg_logical_emit_message); sent only when asked for, decoded so it can be ignored.
Message = collections.namedtuple("Message", "transactional lsn prefix content")


class DecodeError(ConsolidationError):
    """The stream holds bytes that are not a pgoutput version 1 message (a bug or another protocol)."""


def to_lsn(text):
    """An LSN ``'16/B374D848'`` as an integer."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value):
    """An integer LSN as PostgreSQL writes it (``'16/B374D848'``)."""
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def to_datetime(microseconds):
    """A pgoutput timestamp (microseconds since 2000-01-01 UTC) as an aware datetime."""
    return POSTGRES_EPOCH + datetime.timedelta(microseconds=microseconds)


class _Reader(object):
    def __init__(self, data):
        self.data = bytes(data)
        self.offset = 0

    def _take(self, fmt):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise DecodeError("pgoutput message cut short at byte %d of %d" % (self.offset, len(self.data)))
        value = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return value[0]

    def byte(self):
        return chr(self._take("!B"))

    def int8(self):
        return self._take("!B")

    def int16(self):
        return self._take("!H")

    def int32(self):
        return self._take("!I")

    def signed32(self):
        return self._take("!i")

    def int64(self):
        return self._take("!Q")

    def signed64(self):
        return self._take("!q")

    def string(self):
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            raise DecodeError("pgoutput string without its terminating NUL at byte %d" % self.offset)
        text = self.data[self.offset:end].decode("utf-8")
        self.offset = end + 1
        return text

    def raw(self, length):
        if self.offset + length > len(self.data):
            raise DecodeError("pgoutput value of %d bytes cut short at byte %d" % (length, self.offset))
        value = self.data[self.offset:self.offset + length]
        self.offset += length
        return value

    def tuple_data(self):
        values = []
        for _column in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self.raw(self.int32()).decode("utf-8"))
            else:
                # 'b' (binary) exists only with the binary option of protocol 2 and later, which is never asked for.
                raise DecodeError("pgoutput tuple column of kind %r is not text, NULL or unchanged" % kind)
        return tuple(values)

    def end(self, message):
        if self.offset != len(self.data):
            raise DecodeError("pgoutput %s message has %d trailing bytes"
                              % (type(message).__name__, len(self.data) - self.offset))
        return message


def _old_and_new(reader):
    """(old_kind, old, new) of an Update: an optional 'K'/'O' old tuple, then 'N' and the new one."""
    kind = reader.byte()
    old_kind = old = None
    if kind in (OLD_KEY, OLD_FULL):
        old_kind, old = kind, reader.tuple_data()
        kind = reader.byte()
    if kind != "N":
        raise DecodeError("pgoutput Update without its new tuple (found %r)" % kind)
    return old_kind, old, reader.tuple_data()


def _decode_relation(reader):
    relid, namespace, name = reader.int32(), reader.string(), reader.string()
    identity = reader.byte()
    columns = []
    for _column in range(reader.int16()):
        flags = reader.int8()
        columns.append(RelationColumn(reader.string(), reader.int32(), reader.signed32(), bool(flags & COLUMN_IS_KEY)))
    return Relation(relid, namespace, name, identity, tuple(columns))


def _decode_truncate(reader):
    count, options = reader.int32(), reader.int8()
    relids = tuple(reader.int32() for _relation in range(count))
    return Truncate(bool(options & TRUNCATE_CASCADE), bool(options & TRUNCATE_RESTART_IDENTITY), relids)


def _decode_delete(reader):
    relid, kind = reader.int32(), reader.byte()
    if kind not in (OLD_KEY, OLD_FULL):
        raise DecodeError("pgoutput Delete without its old tuple (found %r)" % kind)
    return Delete(relid, kind, reader.tuple_data())


def _decode_insert(reader):
    relid, kind = reader.int32(), reader.byte()
    if kind != "N":
        raise DecodeError("pgoutput Insert without its new tuple (found %r)" % kind)
    return Insert(relid, reader.tuple_data())


def _decode_message(reader):
    transactional, lsn, prefix = bool(reader.int8()), reader.int64(), reader.string()
    return Message(transactional, lsn, prefix, reader.raw(reader.int32()))


_DECODERS = {
    "B": lambda r: Begin(r.int64(), to_datetime(r.signed64()), r.int32()),
    "C": lambda r: Commit(r.int8(), r.int64(), r.int64(), to_datetime(r.signed64())),
    "O": lambda r: Origin(r.int64(), r.string()),
    "R": _decode_relation,
    "Y": lambda r: Type(r.int32(), r.string(), r.string()),
    "I": _decode_insert,
    "U": lambda r: Update(r.int32(), *_old_and_new(r)),
    "D": _decode_delete,
    "T": _decode_truncate,
    "M": _decode_message,
}


def decode(payload):
    """One pgoutput (protocol 1) message from its bytes; raises DecodeError for anything else."""
    reader = _Reader(payload)
    if not reader.data:
        raise DecodeError("empty pgoutput message")
    kind = reader.byte()
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise DecodeError("pgoutput message of unknown kind %r (protocol version 1 was asked for)" % kind)
    return reader.end(decoder(reader))
