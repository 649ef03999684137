# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Editing a .NET JSON settings file (``appsettings.json``) span by span.

.NET reads these files with comments and trailing commas allowed, so the
parser here accepts both and records where every key and value sits; an edit
rewrites only those spans, and the result must parse to the original data
with exactly the requested changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import (
    ConfigEditError,
    EditResult,
    check_overlap,
    line_end,
    line_start,
    newline_of,
    same_key,
    split_key_path,
)


def _position(text, pos):
    line = text.count("\n", 0, pos) + 1
    return line, pos - line_start(text, pos) + 1


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
    return [index for index, member in enumerate(node.members) if same_key(member.key, part)]


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
    rest = text[pos:line_end(text, pos)].strip()
    return not rest or rest.startswith("//")


def _splice(text, edits):
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _json_remove_member(text, obj, index):
    members = obj.members
    member = members[index]
    after = member.comma + 1 if member.comma is not None else member.value.end
    begin = line_start(text, member.key_start)
    if not text[begin:member.key_start].strip() and _rest_is_trivia(text, after):
        # The member has its own line(s): drop them whole, with a trailing // comment.
        edits = [(begin, line_end(text, after), "")]
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
        indent = text[line_start(text, first.key_start):first.key_start]
        base = _leading_blanks(text, root.start)
        if not indent.strip() and len(indent) > len(base):
            return indent[len(base):]
    return "  "


def _leading_blanks(text, pos):
    start = line_start(text, pos)
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
    newline, unit = newline_of(text), _indent_unit(text, root)
    if node.members:
        member = node.members[before]
        begin = line_start(text, member.key_start)
        indent = text[begin:member.key_start]
        if not indent.strip():
            line = indent + json.dumps(key, ensure_ascii=False) + ": " + _render_json(value, indent, unit, newline)
            return text[:begin] + line + "," + newline + text[begin:]
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
            if len(parts) > depth and all(same_key(a, b) for a, b in zip(parts, prefix)) \
                    and same_key(parts[depth], member.key):
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
            rendered = _render_json(value, indent, _indent_unit(text, root), newline_of(text))
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
        keys = [key for key in node if same_key(key, part)] if isinstance(node, dict) else []
        if not keys or not isinstance(node[keys[-1]], dict):
            return
        parents.append(node[keys[-1]])
    holder = parents[-1]
    keys = [key for key in holder if same_key(key, parts[-1])]
    for key in keys:
        del holder[key]
    if keys and prune_empty and len(parents) > 1 and not holder:
        grand = parents[-2]
        for key in [key for key in grand if same_key(key, parts[-2])]:
            del grand[key]


def _data_set(data, parts, value):
    node = data
    for part in parts[:-1]:
        keys = [key for key in node if same_key(key, part)]
        if not keys:
            node[part] = {}
            keys = [part]
        node = node[keys[-1]]
    keys = [key for key in node if same_key(key, parts[-1])]
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
