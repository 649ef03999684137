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
