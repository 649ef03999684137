# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Editing the ``environment`` of services in a Docker Compose file.

The file is edited line by line at the positions PyYAML's composer reports
(PyYAML ships with ansible-core); the result is loaded again and compared
with the original, so that only the requested variables of the targeted
services change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import (
    ConfigEditError,
    EditResult,
    check_overlap,
    line_end,
    line_start,
    newline_of,
)

try:
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode
    YAML_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    yaml = None
    MappingNode = ScalarNode = SequenceNode = None
    YAML_IMPORT_ERROR = "PyYAML is required for format=compose"

MERGE_TAG = "tag:yaml.org,2002:merge"


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


def compose_data(text):
    """The data of a Compose file."""
    _require_yaml()
    return _compose_load(text)


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
    newline = newline_of(text)
    root = _compose_nodes(text)
    services, service_key, service = _service(root, name)
    env_key, environment = _get(service, "environment")
    _flow_check(name, environment)
    if env_key is None:
        indent = service.value[0][0].start_mark.column
        unit = max(indent - service_key.start_mark.column, 2)
        pos = line_end(text, _last_index(*service.value[-1]))
        prefix = "" if text[:pos].endswith("\n") or not text[:pos] else newline
        block = " " * indent + "environment:" + newline + " " * (indent + unit) + key + ": " + _yaml_scalar(value)
        return text[:pos] + prefix + block + newline + text[pos:]
    if isinstance(environment, ScalarNode):
        if environment.value not in ("", "~", "null") or environment.style is not None:
            raise ConfigEditError("the environment of service %s is neither a mapping nor a list" % name)
        indent = env_key.start_mark.column + max(env_key.start_mark.column - service_key.start_mark.column, 2)
        pos = line_end(text, env_key.end_mark.index)
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
        pos = line_start(text, anchor[0].start_mark.index)
    else:
        pos = line_end(text, _last_index(*environment.value[-1]))
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
    newline = newline_of(text)
    anchor = next((item for item in items if item.value.partition("=")[0] in remove), None)
    model = anchor or items[0]
    prefix = text[line_start(text, model.start_mark.index):model.start_mark.index]
    line = prefix + _yaml_scalar(assignment, model.style) + newline
    if anchor is not None:
        pos = line_start(text, anchor.start_mark.index)
    else:
        pos = line_end(text, items[-1].end_mark.index - 1)
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
                start = line_start(text, item.start_mark.index)
                return text[:start] + text[line_end(text, item.end_mark.index - 1):]
        return None
    for mapping in [environment] + _merged(environment):
        key_node, value_node = _get(mapping, key)
        if key_node is None:
            continue
        if len(mapping.value) == 1:
            if mapping is not environment:
                raise ConfigEditError("removing %s would leave a merged mapping empty (service %s)" % (key, name))
            return _drop_lines(text, env_key, environment)
        start = line_start(text, key_node.start_mark.index)
        return text[:start] + text[line_end(text, _last_index(key_node, value_node)):]
    return None


def _drop_lines(text, key_node, value_node):
    """Remove a whole ``key: <block>`` (an environment left without variables)."""
    start = line_start(text, key_node.start_mark.index)
    return text[:start] + text[line_end(text, _last_index(key_node, value_node)):]


def services_problem(keys, services):
    """Why ``keys`` cannot be applied without ``services`` (a plain ``NAME`` names no service), or None."""
    unqualified = [key for key in keys if ":" not in key]
    if unqualified and not services:
        return ("format=compose needs services for %s: the services whose environment is edited"
                % ", ".join(unqualified))
    return None


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
