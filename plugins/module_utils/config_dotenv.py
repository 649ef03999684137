# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Editing a Docker Compose ``.env`` file line by line.

Compose's .env: KEY=VALUE lines, optional ``export``, '#' comments, values
unquoted (an inline comment starts at a blank followed by '#'),
'single-quoted' (literal) or "double-quoted" (backslash escapes, $ expanded).
Comments, blank lines and every other line stay as they are.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import (
    ConfigEditError,
    EditResult,
    check_overlap,
    newline_of,
)

_ENV_ASSIGNMENT = re.compile(r"(?P<lead>[ \t]*)(?P<export>export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)"
                             r"(?P<sep>[ \t]*=[ \t]*)")
_ENV_UNQUOTED_UNSAFE = re.compile(r"[\s#'\"\\$`]")
_ENV_DOUBLE_ESCAPES = {"n": "\n", "r": "\r"}


class _EnvEntry:
    def __init__(self, key, start, end, prefix, quote, value, trailing, newline):
        self.key = key
        self.start = start  # first line index
        self.end = end  # one past the last line index
        self.prefix = prefix  # indentation, export, key and '='
        self.quote = quote  # '', "'" or '"'
        self.value = value
        self.trailing = trailing  # blanks and an inline comment after the value
        self.newline = newline


def _split_lines(text):
    """Lines with their endings; only LF ends a line, as in Compose's .env parser."""
    return [line for line in re.split("(?<=\n)", text) if line]


def _strip_newline(line):
    for ending in ("\r\n", "\n", "\r"):
        if line.endswith(ending):
            return line[:-len(ending)], ending
    return line, ""


def _env_unescape(raw):
    out, pos = [], 0
    while pos < len(raw):
        char = raw[pos]
        if char == "\\" and pos + 1 < len(raw):
            following = raw[pos + 1]
            out.append(_ENV_DOUBLE_ESCAPES.get(following, following))
            pos += 2
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def _closing_quote(text, start, quote):
    pos = start
    while True:
        pos = text.find(quote, pos)
        if pos < 0:
            return -1
        backslashes = 0
        while pos - backslashes - 1 >= start and text[pos - backslashes - 1] == "\\":
            backslashes += 1
        if quote == "'" or backslashes % 2 == 0:
            return pos
        pos += 1


def parse_dotenv(text):
    """Entries of a .env file in order; other lines (comments, blanks, bare names) are not entries."""
    lines = _split_lines(text)
    entries, index = [], 0
    while index < len(lines):
        content, newline = _strip_newline(lines[index])
        match = _ENV_ASSIGNMENT.match(content)
        if not match or content.lstrip().startswith("#"):
            index += 1
            continue
        rest, end = content[match.end():], index + 1
        quote = rest[:1] if rest[:1] in ("'", '"') else ""
        if quote:
            body = rest[1:]
            close = _closing_quote(body, 0, quote)
            while close < 0 and end < len(lines):  # a quoted value may span lines
                more, newline = _strip_newline(lines[end])
                body += "\n" + more
                end += 1
                close = _closing_quote(body, 0, quote)
            if close < 0:
                raise ConfigEditError("line %d: the quoted value of %s is not closed" % (index + 1, match.group("key")))
            raw, trailing = body[:close], body[close + 1:]
            value = _env_unescape(raw) if quote == '"' else raw
        else:
            comment = re.search(r"[ \t]#", rest)
            raw = rest[:comment.start()] if comment else rest
            value = raw.rstrip()
            trailing = rest[len(value):]
        entries.append(_EnvEntry(match.group("key"), index, end, content[:match.end()], quote, value, trailing,
                                 newline))
        index = end
    return entries


def dotenv_data(text):
    return dict((entry.key, entry.value) for entry in parse_dotenv(text))


def format_dotenv_value(value, prefer=""):
    """``value`` as Compose's .env parser reads it back, in the quoting style ``prefer`` if that can hold it."""
    single_ok = "'" not in value and "\\" not in value and "\n" not in value and "\r" not in value
    unquoted_ok = not _ENV_UNQUOTED_UNSAFE.search(value)
    if prefer == "" and unquoted_ok:
        return value
    if prefer == "'" and single_ok:
        return "'%s'" % value
    if prefer != '"':
        if unquoted_ok:
            return value
        if single_ok:
            return "'%s'" % value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"%s"' % escaped.replace("\n", "\\n").replace("\r", "\\r")


def edit_dotenv(text, remove, set_values):
    """Remove and set variables of a .env file; comments, blank lines and other lines stay.

    A changed variable keeps its line, ``export`` and quoting style (when the
    style can hold the new value); a new one takes the place of the first
    removed variable, else goes at the end.
    """
    for key, value in set_values.items():
        if not isinstance(value, str):
            raise ConfigEditError("%s: dotenv values are strings" % key)
    check_overlap(remove, list(set_values), split=lambda key: [key])
    lines = _split_lines(text)
    entries = parse_dotenv(text)
    newline = newline_of(text)
    removing = [entry for entry in entries if entry.key in remove]
    anchor = removing[0] if removing else None
    replacements, inserted, updated = {}, [], []
    for key, value in set_values.items():
        existing = [entry for entry in entries if entry.key == key]
        if existing and all(entry.value == value for entry in existing):
            continue
        updated.append(key)
        for entry in existing:
            replacements[entry.start] = (entry, entry.prefix + format_dotenv_value(value, entry.quote)
                                         + entry.trailing + entry.newline)
        if not existing:
            style = anchor.quote if anchor else ""
            inserted.append(key + "=" + format_dotenv_value(value, style) + newline)
    out, skip_until = [], 0
    drop = dict((entry.start, entry) for entry in removing)
    for index, line in enumerate(lines):
        if index < skip_until:
            continue
        if anchor is not None and index == anchor.start:
            out.extend(inserted)
        if index in drop:
            skip_until = drop[index].end
        elif index in replacements:
            entry, replacement = replacements[index]
            out.append(replacement)
            skip_until = entry.end
        else:
            out.append(line)
    if anchor is None and inserted:
        if out and not out[-1].endswith(("\n", "\r")):
            out[-1] += newline
        out.extend(inserted)
    new_text = "".join(out)
    expected = dotenv_data(text)
    for key in remove:
        expected.pop(key, None)
    expected.update(set_values)
    if dotenv_data(new_text) != expected:
        raise ConfigEditError("internal check failed: the edit would change more than the requested variables; "
                              "nothing was written")
    return EditResult(new_text, sorted(set(entry.key for entry in removing), key=list(remove).index), updated)
