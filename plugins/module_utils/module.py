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

A module that works on a target database (it has ``target`` and ``target_database``)
holds that database's advisory lock for its lifetime and checks the run's lease
(:mod:`lease`); it also knows the ansible-playbook it works for (:mod:`controller`),
so that long loops can stop at a table boundary once that is gone (``checkpoint``,
``on_controller_gone``). A failed result stays short: the statements and every list
of partial results go to a private failure record in the run directory, the result
names it and the failing statement.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import sys
import threading

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    PSYCOPG2_IMPORT_ERROR,
    Endpoint,
    endpoint_spec,
    extra_keywords,
    program_runner,
    psycopg2,
    secrets_of,
    service_problems,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import Controller, Watchdog
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import utc_timestamp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import (
    ConsolidationError,
    ControllerGone,
    postgres_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.lease import TargetLease
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import mapping_argument_spec

SERVERS = {
    "source": "the server that holds the legacy databases",
    "target": "the server that holds the consolidated database",
}
_POSTGRES_ERRORS = (psycopg2.Error,) if psycopg2 is not None else ()
STATEMENT_SHOWN = 300  # characters of the failing statement a failed result shows
CHECK_MODE_QUERIES_SHOWN = 20  # check mode writes no failure record: the last statements stay inline


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


def postgres_cause(exc):
    """The PostgreSQL error behind ``exc`` (itself, or what it was raised from), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if _POSTGRES_ERRORS and isinstance(exc, _POSTGRES_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _in_dsn(endpoint):
    """Host and port as a connection's DSN shows them: only what was given, the port as text."""
    port = endpoint.get("port")
    return endpoint.get("host"), None if port is None else str(port)


def failing_side(exc, params):
    """``source`` or ``target``: the server whose session raised the PostgreSQL error, or None."""
    cursor = getattr(postgres_cause(exc), "cursor", None)
    connection = getattr(cursor, "connection", None)
    if connection is None:
        return None
    # The DSN outlives the connection (a connection cut off mid-COPY is closed before the error is reported).
    dsn = psycopg2.extensions.parse_dsn(connection.dsn)
    sides = [side for side in SERVERS
             if params.get(side) and _in_dsn(params[side]) == (dsn.get("host"), dsn.get("port"))]
    if len(sides) == 2:  # one server plays both parts: the database tells them apart
        return "target" if dsn.get("dbname") == params.get("target_database") else "source"
    return sides[0] if sides else None


def failing_statement(exc, journal):
    """The statement that failed (from the error's cursor, else the last one kept), cut to STATEMENT_SHOWN."""
    cursor = getattr(postgres_cause(exc), "cursor", None)
    text = getattr(cursor, "query", None) or (journal.queries[-1] if journal.queries else None)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text and len(text) > STATEMENT_SHOWN:
        text = "%s... (%d characters)" % (text[:STATEMENT_SHOWN], len(text))
    return text


def run_directory(params):
    """The run directory a module's options point into, or None (the failure record then goes to the temp dir)."""
    for option in ("run_dir", "report_dir"):
        if params.get(option):
            return params[option]
    for option in ("progress_log", "log_file"):
        if params.get(option):
            return os.path.dirname(params[option])
    return None


class ConsolidationModule(AnsibleModule):
    """AnsibleModule with the collection's checks, journal and error translation.

    ``needs`` names the servers (``source``, ``target``) the module cannot
    work without; psycopg2 is required only then (a module that edits files on
    an application host needs neither). ``unique_queries`` keeps a statement run
    once per table once. ``reads_target_only`` (a verification) takes neither the
    run's lease nor its lock.
    """

    def __init__(self, argument_spec, needs=(), unique_queries=False, check_lease=True, reads_target_only=False,
                 **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super(ConsolidationModule, self).__init__(argument_spec=argument_spec, **kwargs)
        if needs and PSYCOPG2_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
        for side in SERVERS:
            if self.params.get(side):
                # Connection failures then name the side that failed.
                self.params[side] = Endpoint(side, self.params[side])
        problems = [missing_server(side) for side in needs if not self.params.get(side)]
        for side in SERVERS:
            try:
                extra_keywords(self.params.get(side) or {})
            except ConsolidationError as exc:
                problems.extend(exc.problems)
            if self.params.get(side):
                problems.extend(service_problems(self.params[side]))
        if problems:
            self.fail_json(msg="; ".join(problems), problems=problems)
        self.journal = QueryJournal(program_runner(self), self.check_mode, unique=unique_queries)
        self.controller = Controller()
        self.lease = None
        self._on_gone = []
        self._gone = False
        self._gone_lock = threading.Lock()
        # A module that only reads the target (a verification) neither needs the lease nor blocks a run that
        # holds it, and may log in as a role that cannot read the state schema.
        takes_lease = not (self.check_mode or reads_target_only)
        if takes_lease and self.params.get("target") and self.params.get("target_database"):
            with self.failures():
                target = TargetLease(self.params["target"], self.params["target_database"],
                                     self.controller.identity(), self.params.get("run_id") or None)
                if check_lease:
                    target.check(heartbeat=False)  # a run the lease refuses never touches the lock
                self.lease = target.lock()
                if check_lease:
                    self.lease.check()
        self._watchdog = Watchdog(self.controller, self._controller_gone).start()

    # connect_params is an open dictionary, so no_log cannot mark its sslpassword: its secrets join the
    # masked values before the invocation is logged or returned (also by a failed argument validation).
    def _mask_connection_secrets(self):
        for side in SERVERS:
            if isinstance(self.params.get(side), dict):
                self.no_log_values.update(secrets_of(self.params[side]))

    def _log_invocation(self):
        self._mask_connection_secrets()
        super(ConsolidationModule, self)._log_invocation()

    def _return_formatted(self, kwargs):
        self._mask_connection_secrets()
        super(ConsolidationModule, self)._return_formatted(kwargs)

    # -- the controller ---------------------------------------------------------------------------

    def on_controller_gone(self, stop):
        """Have ``stop(reason)`` called (from another thread) as soon as ansible-playbook is gone."""
        self._on_gone.append(stop)

    def _controller_gone(self):
        with self._gone_lock:
            if self._gone:
                return  # the watchdog and a table boundary may both find out
            self._gone = True
        for stop in self._on_gone:
            stop(self.controller.gone_reason())

    def checkpoint(self):
        """Call at a table boundary: once ansible-playbook is gone, stop the work and raise ControllerGone."""
        if not self.controller.alive():
            self._controller_gone()
            raise ControllerGone(self.controller.gone_reason())

    # -- failures ---------------------------------------------------------------------------------

    def fail(self, problems, message=None, to_record=None, **result):
        """Fail with every problem; the statements, commands and ``to_record`` go to a failure record.

        ``to_record`` holds partial results too long for a task line (what a copy did so far, say).
        The result keeps the message, the problems, the side and the statement that failed (cut
        short), ``result`` and the path of the record (0600, in the run directory). In check mode
        nothing is written: the last statements and ``to_record`` stay in the result instead.
        """
        queries = result.pop("queries", self.journal.queries)
        commands = result.pop("commands", self.journal.commands)
        cause = sys.exc_info()[1]  # called while handling the error (in failures(), or a module's own except)
        side, statement = failing_side(cause, self.params), failing_statement(cause, self.journal)
        result.update((key, value) for key, value in (("side", side), ("failed_statement", statement)) if value)
        result["queries_total"] = len(queries)
        msg = message or "; ".join(problems)
        if self.check_mode:
            result.update(to_record or {}, queries=queries[-CHECK_MODE_QUERIES_SHOWN:])
        elif queries or commands or to_record:
            saved = dict(to_record or {}, msg=msg, problems=list(problems), queries=queries, commands=commands,
                         side=side, failed_statement=statement, failed_at=utc_timestamp())
            result["failure_record"] = self.journal.save_failure(run_directory(self.params), self._module_name(),
                                                                 saved)
        self.fail_json(msg=msg, problems=list(problems), **result)

    def _module_name(self):
        # Ansible passes the module's FQCN; run by hand, the file name is what there is.
        if "." in self._name and not self._name.endswith(".py"):
            return self._name.rsplit(".", 1)[-1]
        return os.path.splitext(os.path.basename(sys.argv[0]))[0].replace("AnsiballZ_", "")

    @contextlib.contextmanager
    def failures(self, message=None, result=None, to_record=None):
        """Fail the task on a domain, PostgreSQL or file-system error raised in the block.

        ``message(problems)`` words the message (default: the problems joined);
        ``result()`` gives extra keys of the failed result, ``to_record()`` partial results
        for the failure record (what was done so far). Anything else is a bug and keeps
        its traceback.
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
            self.fail(problems, message=message(problems) if message else None,
                      to_record=to_record() if to_record else None, **extra)
