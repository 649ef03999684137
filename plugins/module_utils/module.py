# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opening every module of the collection shares (in the spirit of amazon.aws's AnsibleAWSModule).

A module is glue: it builds its argument spec with :func:`argument_spec`,
opens a :class:`ConsolidationModule` naming the servers it needs, calls its
domain object inside ``with module.failures():`` and exits. The class checks
for psycopg2 and for the ``source``/``target`` connections (worded once
for all modules), keeps one :class:`journal.QueryJournal`, and turns domain,
PostgreSQL and file-system errors into a failed result with a short message,
every problem as a list, and the statements and commands that ran.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    PSYCOPG2_IMPORT_ERROR,
    Endpoint,
    endpoint_spec,
    program_runner,
    psycopg2,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import (
    ConsolidationError,
    postgres_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import mapping_argument_spec

SERVERS = {
    "source": "the server that holds the legacy databases",
    "target": "the server that holds the consolidated database",
}
_POSTGRES_ERRORS = (psycopg2.Error,) if psycopg2 is not None else ()


def argument_spec(mapping=False, run_files=(), **options):
    """``source`` and ``target`` (doc fragment ``connection``), optionally the module mapping
    (``mapping``) and the run/backup-set options (``run_files``: names out of
    run_dir, backup_root, set_id), then the module's own ``options``."""
    spec = dict(source=endpoint_spec(required=False), target=endpoint_spec(required=False))
    if mapping:
        spec.update(mapping_argument_spec())
    run_file_options = dict(run_dir=dict(type="path", required=True), backup_root=dict(type="path", required=True),
                            set_id=dict(type="str", required=True))
    for name in run_files:
        spec[name] = run_file_options[name]
    spec.update(options)
    return spec


def missing_server(side):
    """The one way the collection says a connection is missing."""
    return ("%s is required (%s): pass it to the task or set it once for the play with module_defaults for "
            "group/classifiedads.consolidation.all" % (side, SERVERS[side]))


def error_problems(exc):
    """The problems an exception stands for, as sentences without secrets; None for one it does not know."""
    if isinstance(exc, ConsolidationError):
        return exc.problems
    if _POSTGRES_ERRORS and isinstance(exc, _POSTGRES_ERRORS):
        return [postgres_problem(exc)]
    if isinstance(exc, (IOError, OSError)):
        return ["%s: %s" % (exc.filename or "", exc.strerror or exc)]
    return None


class ConsolidationModule(AnsibleModule):
    """AnsibleModule with the collection's checks, journal and error translation.

    ``needs`` names the servers (``source``, ``target``) the module cannot
    work without; psycopg2 is required only then (a module that edits files on
    an application host needs neither). ``unique_queries`` keeps a statement run
    once per table once.
    """

    def __init__(self, argument_spec, needs=(), unique_queries=False, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super(ConsolidationModule, self).__init__(argument_spec=argument_spec, **kwargs)
        if needs and PSYCOPG2_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
        for side in SERVERS:
            if self.params.get(side):
                # Connection failures then name the side that failed.
                self.params[side] = Endpoint(side, self.params[side])
        problems = [missing_server(side) for side in needs if not self.params.get(side)]
        if problems:
            self.fail_json(msg="; ".join(problems), problems=problems)
        self.journal = QueryJournal(program_runner(self), self.check_mode, unique=unique_queries)

    def fail(self, problems, message=None, **result):
        """Fail with every problem, and the statements and commands the journal kept."""
        result.setdefault("queries", self.journal.queries)
        result.setdefault("commands", self.journal.commands)
        self.fail_json(msg=message or "; ".join(problems), problems=list(problems), **result)

    @contextlib.contextmanager
    def failures(self, message=None, result=None):
        """Fail the task on a domain, PostgreSQL or file-system error raised in the block.

        ``message(problems)`` words the message (default: the problems joined);
        ``result()`` gives extra keys of the failed result (what was done so far).
        Anything else is a bug and keeps its traceback.
        """
        try:
            yield
        except Exception as exc:  # pylint: disable=broad-except
            problems = error_problems(exc)
            if problems is None:
                raise
            extra = dict(result() if result else {})
            if isinstance(exc, ConsolidationError):
                extra.update(exc.details)
            self.fail(problems, message=message(problems) if message else None, **extra)
