# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to change in an application's configuration file, by its format, and how the change is shown.

An ``appsettings.json`` (``json``), a ``.env`` (``dotenv``) or a
``docker-compose.yml`` (``compose``) is edited by the editor of its format
(``config_json``, ``config_dotenv``, ``config_compose``): only the spans that
change are rewritten, and every edit is checked against a parse of the result.
Here: which editor a format takes, the values to set (the shared connection
string under its keys) and the secrets among them, and the diff with every
secret masked. Everything raises ``ConfigEditError``, whose message never
contains a value from the file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_compose import (
    compose_data,
    edit_compose,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_dotenv import dotenv_data, edit_dotenv
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_json import edit_json, parse_json
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import ConfigEditError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import shared_connection_string
from ansible_collections.classifiedads.consolidation.plugins.module_utils.secrets_mask import (
    connection_string_secrets,
    data_secrets,
    mask_text,
)

FORMATS = ("json", "dotenv", "compose")
_DATA = {"json": parse_json, "dotenv": dotenv_data, "compose": compose_data}


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


def requested_values(set_values, connection_string_keys=(), connection=None, connection_string=None):
    """The values to set and the secrets among them: ``set_values`` plus, under each of
    ``connection_string_keys``, the shared connection string (``connection_string`` as given, else
    built from ``connection``). Returns (key -> value, set of secrets)."""
    values = dict(set_values)
    secrets = set()
    if connection_string_keys:
        if connection_string:
            shared = connection_string
        elif connection:
            shared = shared_connection_string(connection)
        else:
            raise ConfigEditError("connection_string_keys needs connection or connection_string")
        secrets.update(connection_string_secrets(shared))
        for key in connection_string_keys:
            values[key] = shared
    for value in values.values():
        if isinstance(value, str):
            secrets.update(connection_string_secrets(value))
    return values, secrets


def document_secrets(fmt, text):
    """Secrets a file holds: connection-string passwords and values under secret-looking names."""
    try:
        data = _DATA[fmt](text)
    except ConfigEditError:
        data = None
    return data_secrets(data)


def masked_diff(path, before, after, secrets, fmt=None):
    """The ``--diff`` of a file, with ``secrets`` and the secrets either text holds (when its format is known)
    masked."""
    secrets = set(secrets)
    if fmt in _DATA:
        secrets |= document_secrets(fmt, before) | document_secrets(fmt, after)
    return {"before_header": path, "after_header": path, "before": mask_text(before, secrets),
            "after": mask_text(after, secrets)}
