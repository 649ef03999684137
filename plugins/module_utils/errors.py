# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base class of the collection's domain errors.

Domain code (plan, copy, DDL, backup, restore, decommission, verification)
raises a subclass of :class:`ConsolidationError` with every problem it found;
it never calls ``fail_json``. :class:`module.ConsolidationModule` turns
one into a failed task result with a short message, the problems as a list,
and the statements and commands that ran before it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ConsolidationError(Exception):
    """Something the operator must act on; ``problems`` lists every reason, each a sentence.

    ``details`` are extra result keys for the failed task (what was done so far,
    say); they must carry no secret.
    """

    def __init__(self, problems, **details):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        self.details = details
        super(ConsolidationError, self).__init__("; ".join(self.problems))


class ProgramError(ConsolidationError):
    """A client program (pg_dump, pg_restore, ...) could not be started at all."""


class ControllerGone(ConsolidationError):
    """The ansible-playbook that started the module is gone: the module stops at a table boundary."""


def postgres_problem(exc):
    """A PostgreSQL error as one line for people, without the contents of any row.

    A constraint violation's DETAIL ("Failing row contains (...)") and a text COPY's
    CONTEXT (the input line) carry whole rows, personal data included: they are
    left out. What names the problem stays: the message, other details (such as
    "Key (id)=(5) already exists"), the hint and the COPY line number.
    """
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        text = (getattr(exc, "pgerror", None) or str(exc)).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    parts = [primary]
    detail = diag.message_detail
    if detail and not detail.startswith("Failing row contains"):
        parts.append(detail)
    if diag.message_hint:
        parts.append(diag.message_hint)
    context = diag.context
    if context:
        first = context.strip().splitlines()[0]
        parts.append(first.split(': "', 1)[0])
    return "; ".join(parts)
