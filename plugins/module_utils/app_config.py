# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Editing an application's configuration files without disturbing the rest of them.

Pure functions of text: ``edit_document`` takes the content of an
``appsettings.json`` (``json``), a ``.env`` (``dotenv``) or a
``docker-compose.yml`` (``compose``), removes and sets keys, and returns the new
content. Only the spans that change are rewritten: other keys, comments, key
order, indentation and line endings stay byte for byte, and every edit is
checked against a parse of the result (the parsed document must equal the
parsed original with exactly the requested changes), so a surprise in the
layout fails loudly instead of changing something else.

Also here: masking secrets in text that is shown (diffs), the name under which
an original is saved, and the decision whether a saved original may be put
back. Everything raises ``ConfigEditError``, whose message never contains a
value from the file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.migrator import (
    _npgsql_value,
    npgsql_connection_string,
)

try:
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode
    YAML_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    yaml = None
    MappingNode = ScalarNode = SequenceNode = None
    YAML_IMPORT_ERROR = "PyYAML is required for format=compose"

FORMATS = ("json", "dotenv", "compose")
MASK = "********"
UTF8_BOM = b"\xef\xbb\xbf"
MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigEditError(Exception):
    """The file cannot be edited as asked. The message names keys and positions, never values."""


class RestoreError(Exception):
    """A saved original cannot be put back."""


class EditResult:
    """The new text and what changed, as key paths (compose: ``<service>:<VARIABLE>``)."""

    def __init__(self, text, removed, updated):
        self.text = text
        self.removed = removed
        self.updated = updated


# ---------------------------------------------------------------- text helpers

def decode_document(data):
    """File bytes -> (text, had_bom). UTF-8 only (what .NET, Compose and dotenv files are)."""
    bom = data.startswith(UTF8_BOM)
    try:
        return data[len(UTF8_BOM):].decode("utf-8") if bom else data.decode("utf-8"), bom
    except UnicodeDecodeError as exc:
        raise ConfigEditError("the file is not UTF-8 text (byte %d)" % exc.start) from None


def encode_document(text, bom):
    return (UTF8_BOM if bom else b"") + text.encode("utf-8")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _newline(text):
    return "\r\n" if "\r\n" in text else "\n"


def _line_start(text, pos):
    return text.rfind("\n", 0, pos) + 1


def _line_end(text, pos):
    """Index just past the newline that ends the line holding ``pos`` (or the end of the text)."""
    end = text.find("\n", pos)
    return len(text) if end < 0 else end + 1


def _position(text, pos):
    line = text.count("\n", 0, pos) + 1
    return line, pos - _line_start(text, pos) + 1


def split_key_path(key_path):
    """``Modules:Product:ConnectionStrings:Default`` -> its parts (.NET's configuration separator)."""
    parts = key_path.split(":")
    if not key_path or any(not part for part in parts):
        raise ConfigEditError("key path %r has an empty part" % key_path)
    return parts


def _same_key(left, right):
    # .NET configuration keys are case-insensitive.
    return left.lower() == right.lower()


def check_overlap(remove, set_keys, split=split_key_path):
    """A key may not be both removed and set, nor one be inside the other."""
    for removed in remove:
        for key in set_keys:
            left, right = split(removed), split(key)
            short = min(len(left), len(right))
            if all(_same_key(a, b) for a, b in zip(left[:short], right[:short])):
                raise ConfigEditError("%r is both removed and set (or one contains the other)" % key)


def edit_document(fmt, text, remove=(), set_values=None, services=(), prune_empty=True):
    """Dispatch to the editor of ``fmt``; returns an EditResult."""
    set_values = set_values or {}
    if fmt == "json":
        return edit_json(text, remove, set_values, prune_empty)
    if fmt == "dotenv":
        return edit_dotenv(text, remove, set_values)
    if fmt == "compose":
        return edit_compose(text, services, remove, set_values)
    raise ConfigEditError("unknown format %r" % fmt)


# ------------------------------------------------------------------------ JSON
#
# appsettings.json is read by .NET with comments and trailing commas allowed,
# so the parser below accepts both and records where every key and value sits.

class _Node:
    def __init__(self, kind, start, end, value=None, members=None, items=None):
        self.kind = kind  # object, array, scalar
        self.start = start
        self.end = end
        self.value = value
        self.members = members
        self.items = items


class _Member:
    def __init__(self, key, key_start, value, comma):
        self.key = key
        self.key_start = key_start
        self.value = value
        self.comma = comma  # index of the comma after the value, or None


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERALS = (("true", True), ("false", False), ("null", None))
_MAX_DEPTH = 256


class _JsonParser:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def fail(self, message, pos=None):
        line, column = _position(self.text, self.pos if pos is None else pos)
        raise ConfigEditError("not valid JSON (comments and trailing commas allowed) at line %d column %d: %s"
                              % (line, column, message))

    def skip(self):
        text, end = self.text, len(self.text)
        while self.pos < end:
            char = text[self.pos]
            if char in " \t\r\n":
                self.pos += 1
            elif text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = end if newline < 0 else newline
            elif text.startswith("/*", self.pos):
                close = text.find("*/", self.pos + 2)
                if close < 0:
                    self.fail("unterminated /* comment")
                self.pos = close + 2
            else:
                return

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def document(self):
        root = self.value(0)
        self.skip()
        if self.pos != len(self.text):
            self.fail("unexpected content after the document")
        return root

    def value(self, depth):
        if depth > _MAX_DEPTH:
            self.fail("nested too deeply")
        self.skip()
        char = self.peek()
        if char == "{":
            return self.object(depth)
        if char == "[":
            return self.array(depth)
        if char == '"':
            return self.string()
        for word, literal in _LITERALS:
            if self.text.startswith(word, self.pos):
                start, self.pos = self.pos, self.pos + len(word)
                return _Node("scalar", start, self.pos, value=literal)
        match = _NUMBER.match(self.text, self.pos)
        if match and match.end() > self.pos:
            self.pos = match.end()
            return _Node("scalar", match.start(), match.end(), value=json.loads(match.group(0)))
        self.fail("expected a value" if char else "unexpected end of the file")

    def string(self):
        start, text, pos = self.pos, self.text, self.pos + 1
        while True:
            if pos >= len(text) or text[pos] in "\r\n":
                self.fail("unterminated string", start)
            if text[pos] == "\\":
                pos += 2
                continue
            if text[pos] == '"':
                break
            pos += 1
        self.pos = pos + 1
        try:
            value = json.loads(text[start:self.pos])
        except ValueError:
            self.fail("invalid escape or control character in a string", start)
        return _Node("scalar", start, self.pos, value=value)

    def object(self, depth):
        start, members = self.pos, []
        self.pos += 1
        while True:
            self.skip()
            if self.peek() == "}":
                self.pos += 1
                return _Node("object", start, self.pos, members=members)
            if members and members[-1].comma is None:
                self.fail("expected ',' or '}'")
            if self.peek() != '"':
                self.fail("expected a quoted key")
            key = self.string()
            self.skip()
            if self.peek() != ":":
                self.fail("expected ':' after a key")
            self.pos += 1
            value = self.value(depth + 1)
            self.skip()
            comma = None
            if self.peek() == ",":
                comma, self.pos = self.pos, self.pos + 1
            members.append(_Member(key.value, key.start, value, comma))

    def array(self, depth):
        start, items = self.pos, []
        self.pos += 1
        while True:
            self.skip()
            if self.peek() == "]":
                self.pos += 1
                return _Node("array", start, self.pos, items=items)
            if items and items[-1][1] is None:
                self.fail("expected ',' or ']'")
            item = self.value(depth + 1)
            self.skip()
            comma = None
            if self.peek() == ",":
                comma, self.pos = self.pos, self.pos + 1
            items.append((item, comma))


def parse_json(text):
    """The data of a .NET JSON settings file (comments and trailing commas allowed)."""
    return _json_data(_JsonParser(text).document())


def _json_root(text):
    root = _JsonParser(text).document()
    if root.kind != "object":
        raise ConfigEditError("the JSON document is not an object")
    return root


def _json_data(node):
    if node.kind == "object":
        return dict((member.key, _json_data(member.value)) for member in node.members)
    if node.kind == "array":
        return [_json_data(item) for item, _comma in node.items]
    return node.value


def _matching(node, part):
    return [index for index, member in enumerate(node.members) if _same_key(member.key, part)]


def _json_follow(root, index_path):
    node = root
    for index in index_path:
        node = node.members[index].value
    return node


def _json_locate(root, parts):
    """Index path of the member at ``parts`` (first match at each level), or None."""
    node, path = root, []
    for depth, part in enumerate(parts):
        if node.kind != "object":
            return None
        found = _matching(node, part)
        if not found:
            return None
        path.append(found[0])
        if depth < len(parts) - 1:
            node = node.members[found[0]].value
    return path


def _rest_is_trivia(text, pos):
    """Whether only blanks or a // comment follow ``pos`` on its line."""
    rest = text[pos:_line_end(text, pos)].strip()
    return not rest or rest.startswith("//")


def _splice(text, edits):
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _json_remove_member(text, obj, index):
    members = obj.members
    member = members[index]
    after = member.comma + 1 if member.comma is not None else member.value.end
    line_start = _line_start(text, member.key_start)
    if not text[line_start:member.key_start].strip() and _rest_is_trivia(text, after):
        # The member has its own line(s): drop them whole, with a trailing // comment.
        edits = [(line_start, _line_end(text, after), "")]
        if member.comma is None and index > 0:
            comma = members[index - 1].comma
            edits.append((comma, comma + 1, ""))
    elif member.comma is not None:
        end = member.comma + 1
        while end < len(text) and text[end] in " \t":
            end += 1
        edits = [(member.key_start, end, "")]
    elif index > 0:
        edits = [(members[index - 1].value.end, member.value.end, "")]
    else:
        edits = [(member.key_start, member.value.end, "")]
    return _splice(text, edits)


def _json_collapse_if_empty(text, root, index_path):
    """``{`` blank lines ``}`` left by a removal becomes ``{}``."""
    node = _json_follow(root, index_path)
    if node.kind == "object" and not node.members and text[node.start + 1:node.end - 1].strip() == "" \
            and node.end - node.start > 2:
        return text[:node.start + 1] + text[node.end - 1:]
    return text


def _indent_unit(text, root):
    if root.members:
        first = root.members[0]
        indent = text[_line_start(text, first.key_start):first.key_start]
        base = _leading_blanks(text, root.start)
        if not indent.strip() and len(indent) > len(base):
            return indent[len(base):]
    return "  "


def _leading_blanks(text, pos):
    start = _line_start(text, pos)
    end = start
    while end < len(text) and text[end] in " \t":
        end += 1
    return text[start:end]


def _render_json(value, indent, unit, newline):
    if isinstance(value, (dict, list)) and value:
        rendered = json.dumps(value, ensure_ascii=False, indent=unit)
        return rendered.replace("\n", newline + indent)
    return json.dumps(value, ensure_ascii=False)


def _nest(parts, value):
    for part in reversed(parts):
        value = {part: value}
    return value


def _json_insert(text, root, node, key, value, before):
    """Insert ``key: value`` into object ``node`` before member ``before`` (or as its only member)."""
    newline, unit = _newline(text), _indent_unit(text, root)
    if node.members:
        member = node.members[before]
        line_start = _line_start(text, member.key_start)
        indent = text[line_start:member.key_start]
        if not indent.strip():
            line = indent + json.dumps(key, ensure_ascii=False) + ": " + _render_json(value, indent, unit, newline)
            return text[:line_start] + line + "," + newline + text[line_start:]
        inline = json.dumps({key: value}, ensure_ascii=False)[1:-1]
        return text[:member.key_start] + inline + ", " + text[member.key_start:]
    base = _leading_blanks(text, node.start)
    indent = base + unit
    line = json.dumps(key, ensure_ascii=False) + ": " + _render_json(value, indent, unit, newline)
    interior = text[node.start + 1:node.end - 1]
    if interior.strip():
        return text[:node.start + 1] + newline + indent + line + text[node.start + 1:]
    return text[:node.start + 1] + newline + indent + line + newline + base + text[node.end - 1:]


def _insertion_index(node, prefix, remove_paths):
    """Where a new key goes: before the member leading to the first removed key, else first.

    The shared ConnectionStrings block lands where the per-module ones were
    reached (just before ``Modules``), so the change reads as a replacement.
    """
    depth = len(prefix)
    for index, member in enumerate(node.members):
        for parts in remove_paths:
            if len(parts) > depth and all(_same_key(a, b) for a, b in zip(parts, prefix)) \
                    and _same_key(parts[depth], member.key):
                return index
    return 0


def _json_set(text, parts, value, remove_paths):
    """Set ``parts`` to ``value``; returns the new text (the same text when nothing changes)."""
    root = _json_root(text)
    node = root
    for depth, part in enumerate(parts):
        found = _matching(node, part)
        if len(found) > 1:
            raise ConfigEditError("%s appears more than once" % ":".join(parts[:depth + 1]))
        if not found:
            before = _insertion_index(node, parts[:depth], remove_paths)
            return _json_insert(text, root, node, part, _nest(parts[depth + 1:], value), before)
        member = node.members[found[0]]
        if depth == len(parts) - 1:
            current = _json_data(member.value)
            if current == value and type(current) is type(value):
                return text
            if member.value.kind != "scalar" and not isinstance(value, (dict, list)):
                raise ConfigEditError("%s holds an object or array, not a value" % ":".join(parts))
            indent = _leading_blanks(text, member.key_start)
            rendered = _render_json(value, indent, _indent_unit(text, root), _newline(text))
            return text[:member.value.start] + rendered + text[member.value.end:]
        if member.value.kind != "object":
            raise ConfigEditError("%s is not an object, so %s cannot be set"
                                  % (":".join(parts[:depth + 1]), ":".join(parts)))
        node = member.value
    return text  # pragma: no cover - the loop always returns


def _json_remove(text, parts, prune_empty):
    """Remove every member at ``parts``; returns (text, whether anything was removed)."""
    removed = False
    while True:
        root = _json_root(text)
        path = _json_locate(root, parts)
        if path is None:
            return text, removed
        parent_path = path[:-1]
        new_text = _json_remove_member(text, _json_follow(root, parent_path), path[-1])
        if new_text == text:  # pragma: no cover - a removal always removes something
            raise ConfigEditError("internal error: %s could not be removed" % ":".join(parts))
        text, removed = new_text, True
        root = _json_root(text)
        parent = _json_follow(root, parent_path)
        if prune_empty and parent_path and not parent.members:
            grand_path = parent_path[:-1]
            text = _json_remove_member(text, _json_follow(root, grand_path), parent_path[-1])
            if grand_path:
                text = _json_collapse_if_empty(text, _json_root(text), grand_path)
        else:
            text = _json_collapse_if_empty(text, root, parent_path)


def _data_remove(data, parts, prune_empty):
    parents = [data]
    for part in parts[:-1]:
        node = parents[-1]
        keys = [key for key in node if _same_key(key, part)] if isinstance(node, dict) else []
        if not keys or not isinstance(node[keys[-1]], dict):
            return
        parents.append(node[keys[-1]])
    holder = parents[-1]
    keys = [key for key in holder if _same_key(key, parts[-1])]
    for key in keys:
        del holder[key]
    if keys and prune_empty and len(parents) > 1 and not holder:
        grand = parents[-2]
        for key in [key for key in grand if _same_key(key, parts[-2])]:
            del grand[key]


def _data_set(data, parts, value):
    node = data
    for part in parts[:-1]:
        keys = [key for key in node if _same_key(key, part)]
        if not keys:
            node[part] = {}
            keys = [part]
        node = node[keys[-1]]
    keys = [key for key in node if _same_key(key, parts[-1])]
    node[keys[-1] if keys else parts[-1]] = value


def edit_json(text, remove, set_values, prune_empty=True):
    """Remove and set keys of a .NET JSON settings file, rewriting only the spans that change.

    ``remove``: key paths (``Modules:Product:ConnectionStrings:Default``); a
    missing key is fine. ``set_values``: key path -> JSON value. With
    ``prune_empty`` the object that held a removed key is removed too when
    nothing else is left in it (the per-module ``ConnectionStrings`` blocks).
    New keys are inserted just before the member that leads to the first
    removed key, else first in their object, indented like their neighbours.
    """
    remove_paths = [split_key_path(key) for key in remove]
    set_paths = [(key, split_key_path(key), value) for key, value in set_values.items()]
    check_overlap(remove, list(set_values))
    before = _json_data(_json_root(text))
    expected = copy.deepcopy(before)
    removed, updated = [], []
    for key, parts, value in set_paths:
        new_text = _json_set(text, parts, value, remove_paths)
        if new_text != text:
            updated.append(key)
            text = new_text
        _data_set(expected, parts, value)
    for key, parts in zip(remove, remove_paths):
        text, found = _json_remove(text, parts, prune_empty)
        if found:
            removed.append(key)
        _data_remove(expected, parts, prune_empty)
    after = _json_data(_json_root(text))
    if after != expected:
        raise ConfigEditError("internal check failed: the edit would change more than the requested keys; "
                              "nothing was written")
    return EditResult(text, removed, updated)


# ---------------------------------------------------------------------- dotenv
#
# Docker Compose's .env: KEY=VALUE lines, optional `export `, '#' comments,
# values unquoted (an inline comment starts at a blank followed by '#'),
# 'single-quoted' (literal) or "double-quoted" (backslash escapes, $ expanded).

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
    newline = _newline(text)
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


# --------------------------------------------------------------------- compose
#
# docker-compose.yml is edited line by line at the positions PyYAML's composer
# reports (PyYAML ships with ansible-core); the result is loaded again and
# compared with the original.

def _require_yaml():
    if yaml is None:
        raise ConfigEditError(YAML_IMPORT_ERROR)


def _compose_nodes(text):
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        raise ConfigEditError("not valid YAML%s: %s" % (where, getattr(exc, "problem", None) or "parse error")) \
            from None


def _compose_load(text):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigEditError("not valid YAML") from None


def _pairs(node):
    return node.value if isinstance(node, MappingNode) else []


def _get(node, key):
    for key_node, value_node in _pairs(node):
        if isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG and key_node.value == key:
            return key_node, value_node
    return None, None


def _is_alias(key_node, value_node):
    # An alias yields the anchored node itself, whose marks lie before the key that uses it.
    return value_node.start_mark.index < key_node.start_mark.index


def _last_index(key_node, value_node):
    """Index of the last character of a key/value pair."""
    if _is_alias(key_node, value_node):
        return key_node.end_mark.index
    node = value_node
    while isinstance(node, (MappingNode, SequenceNode)) and node.value and node.flow_style is False:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
        if isinstance(last, tuple) and _is_alias(last[0], last[1]):
            return last[0].end_mark.index
    return max(node.end_mark.index - 1, node.start_mark.index, key_node.end_mark.index)


def _merged(mapping):
    """Mappings merged into ``mapping`` with ``<<``, recursively, nearest first."""
    found = []
    for key_node, value_node in _pairs(mapping):
        if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode):
                    found.append(source)
                    found.extend(_merged(source))
    return found


def _environment_variables(environment):
    """Compose environment (mapping or KEY=VALUE list) as a dict."""
    if isinstance(environment, dict):
        return dict(environment)
    if isinstance(environment, list):
        result = {}
        for item in environment:
            key, sep, value = str(item).partition("=")
            result[key] = value if sep else None
        return result
    return {}


def _yaml_scalar(value, style=None):
    """A YAML scalar that loads back as the string ``value``, in ``style`` when possible."""
    if style == "'" and "\n" not in value:
        return "'%s'" % value.replace("'", "''")
    if style is None and value == value.strip() and value and "\n" not in value and not value.startswith("#"):
        try:
            if yaml.safe_load("k: %s\n" % value) == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    # A JSON string is a YAML double-quoted scalar; YAML also breaks lines at NEL, LS and PS.
    quoted = json.dumps(value, ensure_ascii=False)
    return quoted.replace("\x85", "\\N").replace("\u2028", "\\L").replace("\u2029", "\\P")


def _single_line(text, node):
    return "\n" not in text[node.start_mark.index:node.end_mark.index]


def _service(root, name):
    _key, services = _get(root, "services")
    if not isinstance(services, MappingNode):
        raise ConfigEditError("the file has no services mapping")
    key_node, service = _get(services, name)
    if key_node is None:
        raise ConfigEditError("service %s is not defined" % name)
    if not isinstance(service, MappingNode) or service.flow_style:
        raise ConfigEditError("service %s is not a block mapping" % name)
    return services, key_node, service


def _flow_check(name, environment):
    if isinstance(environment, (MappingNode, SequenceNode)) and environment.flow_style:
        raise ConfigEditError("the environment of service %s is in flow style ({...} or [...]); write it as a "
                              "block mapping to let it be edited" % name)


def _compose_set(text, name, key, value, remove):
    """One edit towards ``name``'s environment holding ``key: value``; returns the new text."""
    newline = _newline(text)
    root = _compose_nodes(text)
    services, service_key, service = _service(root, name)
    env_key, environment = _get(service, "environment")
    _flow_check(name, environment)
    if env_key is None:
        indent = service.value[0][0].start_mark.column
        unit = max(indent - service_key.start_mark.column, 2)
        pos = _line_end(text, _last_index(*service.value[-1]))
        prefix = "" if text[:pos].endswith("\n") or not text[:pos] else newline
        block = " " * indent + "environment:" + newline + " " * (indent + unit) + key + ": " + _yaml_scalar(value)
        return text[:pos] + prefix + block + newline + text[pos:]
    if isinstance(environment, ScalarNode):
        if environment.value not in ("", "~", "null") or environment.style is not None:
            raise ConfigEditError("the environment of service %s is neither a mapping nor a list" % name)
        indent = env_key.start_mark.column + max(env_key.start_mark.column - service_key.start_mark.column, 2)
        pos = _line_end(text, env_key.end_mark.index)
        line = " " * indent + key + ": " + _yaml_scalar(value)
        if text[env_key.end_mark.index:pos].strip() not in ("", ":"):
            text = text[:text.index(":", env_key.end_mark.index) + 1] + newline + text[pos:]
            pos = text.index(":", env_key.end_mark.index) + 1 + len(newline)
        return text[:pos] + line + newline + text[pos:]
    if isinstance(environment, SequenceNode):
        return _compose_set_list(text, environment, key, value, remove)
    key_node, value_node = _get(environment, key)
    if key_node is not None:
        if isinstance(value_node, ScalarNode) and value_node.style in (None, "'", '"') \
                and _single_line(text, value_node):
            if value_node.value == "" and value_node.style is None:  # `KEY:` with no value
                colon = text.index(":", key_node.end_mark.index)
                return text[:colon + 1] + " " + _yaml_scalar(value) + text[colon + 1:]
            return (text[:value_node.start_mark.index] + _yaml_scalar(value, value_node.style)
                    + text[value_node.end_mark.index:])
        raise ConfigEditError("%s of service %s is not a one-line value" % (key, name))
    anchor = next((pair for pair in environment.value if pair[0].value in remove and pair[0].tag != MERGE_TAG),
                  None)
    indent = " " * environment.value[0][0].start_mark.column
    line = indent + key + ": " + _yaml_scalar(value) + newline
    if anchor is not None:
        pos = _line_start(text, anchor[0].start_mark.index)
    else:
        pos = _line_end(text, _last_index(*environment.value[-1]))
        if not text[:pos].endswith("\n"):
            line = newline + line
    return text[:pos] + line + text[pos:]


def _compose_set_list(text, environment, key, value, remove):
    items = environment.value
    assignment = key + "=" + value
    for item in items:
        if isinstance(item, ScalarNode) and item.value.partition("=")[0] == key:
            if item.style not in (None, "'", '"') or not _single_line(text, item):
                raise ConfigEditError("%s is not a one-line list item" % key)
            return text[:item.start_mark.index] + _yaml_scalar(assignment, item.style) + text[item.end_mark.index:]
    newline = _newline(text)
    anchor = next((item for item in items if item.value.partition("=")[0] in remove), None)
    model = anchor or items[0]
    prefix = text[_line_start(text, model.start_mark.index):model.start_mark.index]
    line = prefix + _yaml_scalar(assignment, model.style) + newline
    if anchor is not None:
        pos = _line_start(text, anchor.start_mark.index)
    else:
        pos = _line_end(text, items[-1].end_mark.index - 1)
        if not text[:pos].endswith("\n"):
            line = newline + line
    return text[:pos] + line + text[pos:]


def _compose_remove_once(text, name, key):
    """Remove one occurrence of ``key`` from ``name``'s environment (or what it merges); None when absent."""
    root = _compose_nodes(text)
    _services, _service_key, service = _service(root, name)
    env_key, environment = _get(service, "environment")
    if environment is None:
        return None
    _flow_check(name, environment)
    if isinstance(environment, SequenceNode):
        for item in environment.value:
            if isinstance(item, ScalarNode) and item.value.partition("=")[0] == key:
                if len(environment.value) == 1:
                    return _drop_lines(text, env_key, environment)
                start = _line_start(text, item.start_mark.index)
                return text[:start] + text[_line_end(text, item.end_mark.index - 1):]
        return None
    for mapping in [environment] + _merged(environment):
        key_node, value_node = _get(mapping, key)
        if key_node is None:
            continue
        if len(mapping.value) == 1:
            if mapping is not environment:
                raise ConfigEditError("removing %s would leave a merged mapping empty (service %s)" % (key, name))
            return _drop_lines(text, env_key, environment)
        start = _line_start(text, key_node.start_mark.index)
        return text[:start] + text[_line_end(text, _last_index(key_node, value_node)):]
    return None


def _drop_lines(text, key_node, value_node):
    """Remove a whole ``key: <block>`` (an environment left without variables)."""
    start = _line_start(text, key_node.start_mark.index)
    return text[:start] + text[_line_end(text, _last_index(key_node, value_node)):]


def compose_targets(services, remove, set_values):
    """Per service, the variables to remove and set: ``NAME`` applies to every service of ``services``,
    ``<service>:NAME`` to that service only (a variable name never holds ``:``)."""
    plan = dict((name, ([], {})) for name in services)

    def targets(key):
        service, sep, name = key.partition(":")
        if sep and (not service or not name):
            raise ConfigEditError("%r is neither NAME nor <service>:NAME" % key)
        return ([service], name) if sep else (list(services), key)

    for key in remove:
        names, variable = targets(key)
        for name in names:
            plan.setdefault(name, ([], {}))[0].append(variable)
    for key, value in set_values.items():
        if not isinstance(value, str):
            raise ConfigEditError("%s: compose environment values are strings" % key)
        names, variable = targets(key)
        for name in names:
            plan.setdefault(name, ([], {}))[1][variable] = value
    for removing, setting in plan.values():
        check_overlap(removing, list(setting), split=lambda key: [key])
    return plan


def edit_compose(text, services, remove, set_values):
    """Remove and set variables in the ``environment`` of services of a Compose file.

    See ``compose_targets`` for which service each key applies to. The
    environment may be a mapping or a ``KEY=VALUE`` list; a variable defined
    through a merge key (``<<: *anchor``) is removed at its anchor. A new
    variable takes the place of the first removed one, else goes last.
    Refused: flow-style environments, and any edit that would also change a
    service that is not targeted (through a shared anchor).
    """
    _require_yaml()
    plan = compose_targets(services, remove, set_values)
    if "\r" in text.replace("\r\n", "") or re.search("[\x85\u2028\u2029]", text):
        raise ConfigEditError("the file has line breaks other than LF and CRLF")
    before = _compose_load(text)
    if not isinstance(before, dict) or not isinstance(before.get("services"), dict):
        raise ConfigEditError("the file has no services mapping")
    missing = [name for name in plan if name not in before["services"]]
    if missing:
        raise ConfigEditError("service(s) not defined in the file: %s" % ", ".join(missing))
    removed, updated = [], []
    for name, (removing, setting) in plan.items():
        for key, value in setting.items():
            current = _environment_variables((_compose_load(text)["services"][name] or {}).get("environment"))
            if key in current and current[key] == value:
                continue
            text = _compose_set(text, name, key, value, removing)
            updated.append("%s:%s" % (name, key))
        for key in removing:
            found = False
            while True:
                new_text = _compose_remove_once(text, name, key)
                if new_text is None:
                    break
                if new_text == text:  # pragma: no cover - a removal always removes something
                    raise ConfigEditError("internal error: %s of service %s could not be removed" % (key, name))
                text, found = new_text, True
            if found:
                removed.append("%s:%s" % (name, key))
    _compose_check(before, _compose_load(text), plan)
    return EditResult(text, removed, updated)


def _compose_check(before, after, plan):
    problem = "internal check failed: the edit would change more than the requested variables"
    if not isinstance(after, dict) or not isinstance(after.get("services"), dict):
        raise ConfigEditError(problem + "; nothing was written")
    for key in set(before) | set(after):
        if key != "services" and not str(key).startswith("x-") and before.get(key) != after.get(key):
            raise ConfigEditError(problem + " (top-level %s); nothing was written" % key)
    for name in set(before["services"]) | set(after["services"]):
        old, new = before["services"].get(name) or {}, after["services"].get(name) or {}
        if name not in plan:
            if old != new:
                raise ConfigEditError("the edit would also change service %s, which shares an anchor with an edited "
                                      "service; edit it too or unshare the anchor; nothing was written" % name)
            continue
        removing, setting = plan[name]
        expected = _environment_variables(old.get("environment"))
        for key in removing:
            expected.pop(key, None)
        expected.update(setting)
        rest_old = dict((k, v) for k, v in old.items() if k != "environment")
        rest_new = dict((k, v) for k, v in new.items() if k != "environment")
        if rest_old != rest_new or _environment_variables(new.get("environment")) != expected:
            raise ConfigEditError(problem + " (service %s); nothing was written" % name)


# --------------------------------------------------------------------- secrets

_SECRET_NAME = re.compile(r"(?i)(passw(or)?d|pwd|secret|token|api_?key|access_?key|account_?key|encryption_?key|"
                          r"private_?key)")
_CONNECTION_SECRET = re.compile(r"""(?i)\b(password|pwd|accountkey|sharedaccesskey)(\s*=\s*)"""
                                r"""("(?:[^"]|"")*"|'(?:[^']|'')*'|[^;"'\r\n]*)""")
_CONNECTION_SECRET_KEYWORDS = ("password", "pwd", "psw", "accountkey", "sharedaccesskey")
# Values under secret-looking names shorter than this are placeholders ("xxx"), not worth mangling the diff for.
_MIN_GUESSED_SECRET = 4


def connection_string_pairs(text):
    """(keyword, value) pairs of an ADO.NET/Npgsql-style connection string, as far as it parses."""
    pairs, pos, end = [], 0, len(text)
    while pos < end:
        while pos < end and (text[pos].isspace() or text[pos] == ";"):
            pos += 1
        equals = text.find("=", pos)
        if pos >= end or equals < 0:
            break
        keyword, pos = text[pos:equals].strip(), equals + 1
        while pos < end and text[pos] in " \t":
            pos += 1
        if pos < end and text[pos] in "\"'":
            quote, chars, pos = text[pos], [], pos + 1
            while pos < end:
                if text[pos] == quote:
                    if text.startswith(quote * 2, pos):
                        chars.append(quote)
                        pos += 2
                        continue
                    pos += 1
                    break
                chars.append(text[pos])
                pos += 1
            value = "".join(chars)
        else:
            stop = text.find(";", pos)
            stop = end if stop < 0 else stop
            value, pos = text[pos:stop].strip(), stop
        pairs.append((keyword, value))
    return pairs


def connection_string_secrets(text):
    """Password (and storage key) values of a connection string."""
    if "=" not in text:
        return []
    return [value for keyword, value in connection_string_pairs(text)
            if value and keyword.lower().replace(" ", "") in _CONNECTION_SECRET_KEYWORDS]


def _walk_strings(data, name=""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk_strings(value, str(key))
    elif isinstance(data, list):
        for value in data:
            if isinstance(value, str) and "=" in value:
                key, _sep, rest = value.partition("=")
                yield key, rest
            else:
                yield from _walk_strings(value, name)
    elif isinstance(data, str):
        yield name, data


def document_secrets(fmt, text):
    """Secrets a file holds: connection-string passwords and values under secret-looking names."""
    try:
        if fmt == "json":
            data = parse_json(text)
        elif fmt == "dotenv":
            data = dotenv_data(text)
        else:
            _require_yaml()
            data = _compose_load(text)
    except ConfigEditError:
        data = None
    secrets = set()
    for name, value in _walk_strings(data):
        secrets.update(connection_string_secrets(value))
        if _SECRET_NAME.search(name) and len(value) >= _MIN_GUESSED_SECRET:
            secrets.add(value)
    return secrets


def _encodings(secret):
    """The spellings a secret takes in the files: raw, Npgsql-quoted, JSON/YAML- and dotenv-escaped."""
    bases = {secret, '"%s"' % secret.replace('"', '""'), "'%s'" % secret.replace("'", "''")}
    forms = set()
    for base in bases:
        forms.add(base)
        forms.add(json.dumps(base)[1:-1])
        forms.add(json.dumps(base, ensure_ascii=False)[1:-1])
        forms.add(base.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$"))
        forms.add(base.replace("'", "''"))
    return forms


def mask_text(text, secrets):
    """``text`` with every secret (in any of its spellings) and every connection-string password masked."""
    forms = set()
    for secret in secrets:
        if secret:
            forms.update(_encodings(secret))
    for form in sorted(forms, key=len, reverse=True):
        if form and form != MASK:
            text = text.replace(form, MASK)
    return _CONNECTION_SECRET.sub(lambda match: match.group(1) + match.group(2) + MASK, text)


# ----------------------------------------------------------- connection string

def shared_connection_string(connection):
    """The shared Npgsql connection string for ``connection`` (host, port, database, user, password,
    passfile, sslmode and extra ``options`` keywords), quoted by Npgsql's rules."""
    text = npgsql_connection_string(connection, connection["database"])
    extra = ["%s=%s" % (name, _npgsql_value(value)) for name, value in (connection.get("options") or {}).items()
             if value is not None]
    return ";".join([text] + extra)


# ----------------------------------------------------------- saved originals

def backup_name(path):
    """Stable, readable and collision-free file name for the saved original of ``path``."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", path.strip("/"))[-120:].lstrip("._-") or "file"
    return "%s.%s" % (readable, hashlib.sha256(path.encode("utf-8")).hexdigest()[:12])


def restore_action(path, entry, current_sha256, current_mode, backup_sha256):
    """What putting the original of ``path`` back takes: ``none``, ``mode`` or ``restore``.

    ``current_*`` describe the file now (None if it is missing),
    ``backup_sha256`` the saved copy (None if missing). The saved copy is
    only consulted when the file differs from the recorded original, and it
    must match the sha256 recorded when it was taken.
    """
    if current_sha256 == entry["sha256"]:
        return "none" if current_mode == entry["mode"] else "mode"
    if backup_sha256 is None:
        raise RestoreError("the saved original %s of %s is missing" % (entry["name"], path))
    if backup_sha256 != entry["sha256"]:
        raise RestoreError("the saved original %s of %s does not match the sha256 recorded when it was saved "
                           "(damaged or tampered with); refusing to restore it" % (entry["name"], path))
    return "restore"
