# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the editors of configuration files share: the error, the result, text positions and key paths.

The editors (``config_json``, ``config_dotenv``, ``config_compose``) are pure
functions of text; they rewrite only the spans that change, so they work with
positions in the text and its line endings, and all of them refuse a key
that is both removed and set.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

UTF8_BOM = b"\xef\xbb\xbf"


class ConfigEditError(ConsolidationError):
    """The file cannot be edited as asked. The message names keys and positions, never values."""


class EditResult:
    """The new text and what changed, as key paths (compose: ``<service>:<VARIABLE>``)."""

    def __init__(self, text, removed, updated):
        self.text = text
        self.removed = removed
        self.updated = updated


def decode_document(data):
    """File bytes -> (text, had_bom). UTF-8 only (what .NET, Compose and dotenv files are)."""
    bom = data.startswith(UTF8_BOM)
    try:
        return data[len(UTF8_BOM):].decode("utf-8") if bom else data.decode("utf-8"), bom
    except UnicodeDecodeError as exc:
        raise ConfigEditError("the file is not UTF-8 text (byte %d)" % exc.start) from None


def encode_document(text, bom):
    return (UTF8_BOM if bom else b"") + text.encode("utf-8")


def newline_of(text):
    """The line ending new lines of ``text`` get: CRLF when it has any, else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def line_start(text, pos):
    return text.rfind("\n", 0, pos) + 1


def line_end(text, pos):
    """Index just past the newline that ends the line holding ``pos`` (or the end of the text)."""
    end = text.find("\n", pos)
    return len(text) if end < 0 else end + 1


def split_key_path(key_path):
    """``Modules:Product:ConnectionStrings:Default`` -> its parts (.NET's configuration separator)."""
    parts = key_path.split(":")
    if not key_path or any(not part for part in parts):
        raise ConfigEditError("key path %r has an empty part" % key_path)
    return parts


def same_key(left, right):
    # .NET configuration keys are case-insensitive.
    return left.lower() == right.lower()


def check_overlap(remove, set_keys, split=split_key_path):
    """A key may not be both removed and set, nor one be inside the other."""
    for removed in remove:
        for key in set_keys:
            left, right = split(removed), split(key)
            short = min(len(left), len(right))
            if all(same_key(a, b) for a, b in zip(left[:short], right[:short])):
                raise ConfigEditError("%r is both removed and set (or one contains the other)" % key)
