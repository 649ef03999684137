# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libpq's password file, read the way libpq reads it.

AWX hands a credential's password to a job as a 0600 file in the execution
environment (a custom credential type's ``file`` injector). The modules run on
the consolidation controller, a different host, so the password has to be read
from that file on the Ansible side (the ``pgpass`` lookup) and travel as the
``password`` option, which every module keeps out of logs (``no_log``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def split_line(line):
    """The five fields of one password-file line, with ``\\:`` and ``\\\\`` unescaped; None for a comment,
    a blank line or a line with fewer than five fields (libpq skips those too)."""
    if not line.strip() or line.startswith("#"):
        return None
    fields, current, escaped = [], [], False
    for char in line.rstrip("\r\n"):
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields if len(fields) == 5 else None


def _matches(pattern, value):
    return pattern == "*" or pattern == value


def find_password(text, host, port, user, database="*"):
    """The password of the first line matching ``host``, ``port``, ``database`` and ``user`` (``*`` in a
    field matches anything, as in libpq; ``database="*"`` asks for a line valid for every database the
    run opens, so only a ``*`` there matches it), or None."""
    for line in text.splitlines():
        fields = split_line(line)
        if fields is None:
            continue
        line_host, line_port, line_database, line_user, password = fields
        if (_matches(line_host, host) and _matches(line_port, str(port)) and _matches(line_database, database)
                and _matches(line_user, user)):
            return password
    return None
