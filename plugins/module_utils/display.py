# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection writes names, servers, times and tables for people.

Messages, reports and progress lines go through these helpers, so a name is
quoted the same way everywhere, a server is named the same way everywhere,
and no password ever enters a message. SQL itself is never built from them:
statements use ``psycopg2.sql.Identifier``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.libpq import effective

_BARE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Keywords that PostgreSQL's quote_ident quotes although they are lower-case (the reserved ones and
# those that cannot be a column or function name); a superset would only add harmless quotes.
_KEYWORDS = frozenset("""all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate column concurrently constraint create cross current_catalog current_date current_role current_schema
current_time current_timestamp current_user default deferrable desc distinct do else end except false fetch for
foreign freeze from full grant group having ilike in initially inner intersect into is isnull join lateral leading
left like limit localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing
primary references returning right select session_user similar some symmetric table tablesample then to trailing
true union unique user using variadic verbose when where window with""".split())


def visible(text):
    """Control characters as their Unicode pictures, so that no name can break a line, a log or a table."""
    return "".join(chr(0x2400 + ord(char)) if ord(char) < 32 else u"\u2421" if ord(char) == 127 else char
                   for char in text)


def quote_ident(name):
    """``name`` as PostgreSQL's quote_ident writes it (bare when it can be, else double-quoted), made visible."""
    if _BARE_IDENTIFIER.match(name) and name not in _KEYWORDS:
        return visible(name)
    return visible('"%s"' % name.replace('"', '""'))


def qualified(*parts):
    """``schema.table`` (or any dotted path) for messages, each part quoted as needed; None parts are skipped."""
    return ".".join(quote_ident(part) for part in parts if part is not None)


def address(endpoint):
    """``host:port`` of a server as libpq reaches it, for reports and manifests (no user, no password)."""
    return "%s:%s" % (effective(endpoint, "host") or "(local socket)", effective(endpoint, "port"))


def describe(endpoint, dbname=None):
    """``user@host:port/dbname`` for messages; never includes the password."""
    where = "%s@%s" % (effective(endpoint, "user") or "(default user)", address(endpoint))
    return where + ("/" + dbname if dbname else "")


def public_endpoint(endpoint):
    """The parts of a connection that may be recorded (plan.json): host, port and user, as libpq resolves them."""
    return dict((option, effective(endpoint, option)) for option in ("host", "port", "user"))


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def utc_timestamp(moment=None, whole_seconds=False):
    """``2026-11-20T08:15:00.123456Z``: the one timestamp format of records, reports and manifests.

    ``whole_seconds`` drops the microseconds (``2026-11-20T08:15:00Z``), as the verification report has
    always written its ``generated_at``; :func:`parse_utc` reads both.
    """
    moment = moment or utc_now()
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ" if whole_seconds
                                                             else "%Y-%m-%dT%H:%M:%S.%fZ")


def utc_day(moment):
    """``20261120``: the day stamp of retired database names."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y%m%d")


def parse_utc(text):
    """A timestamp written by :func:`utc_timestamp` (or the same without microseconds), or None."""
    for pattern in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(text, pattern).replace(tzinfo=datetime.timezone.utc)
        except (TypeError, ValueError):
            continue
    return None


def render_table(headings, cells, numeric=()):
    """A fixed-width text table: headings, a rule, one line per row; columns named in ``numeric`` right-aligned.

    Cells are strings (made visible); trailing blanks are cut from every line.
    """
    cells = [[visible(str(cell)) for cell in line] for line in cells]
    widths = [max([len(heading)] + [len(line[index]) for line in cells]) for index, heading in enumerate(headings)]

    def fmt(values):
        out = [value.rjust(width) if heading in numeric else value.ljust(width)
               for heading, value, width in zip(headings, values, widths)]
        return "  ".join(out).rstrip()

    return "\n".join([fmt(headings), "  ".join("-" * width for width in widths)] + [fmt(line) for line in cells])
