# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the secrets in configuration data and masking them in text that is shown.

Diffs of configuration files and logs of the migrator are shown to people;
every password of a connection string, every value under a secret-looking
name, and every value the caller names is replaced by ``********`` there, in
each of the spellings the file formats give it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import connection_string_pairs

MASK = "********"

_SECRET_NAME = re.compile(r"(?i)(passw(or)?d|pwd|secret|token|api_?key|access_?key|account_?key|encryption_?key|"
                          r"private_?key)")
_CONNECTION_SECRET = re.compile(r"""(?i)\b(password|pwd|accountkey|sharedaccesskey)(\s*=\s*)"""
                                r"""("(?:[^"]|"")*"|'(?:[^']|'')*'|[^;"'\r\n]*)""")
_CONNECTION_SECRET_KEYWORDS = ("password", "pwd", "psw", "accountkey", "sharedaccesskey")
# Values under secret-looking names shorter than this are placeholders ("xxx"), not worth mangling the diff for.
_MIN_GUESSED_SECRET = 4


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


def data_secrets(data):
    """Secrets that parsed configuration data holds: connection-string passwords and values under
    secret-looking names (a ``NAME=value`` list item counts as a value under ``NAME``)."""
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
