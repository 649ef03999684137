# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statements and commands a module ran, or in check mode would have run.

Every module returns them (``queries`` and ``commands``), on success and
on failure, also in check mode, as community.postgresql's modules do. One
journal serves a whole module run, from several threads at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile
import threading

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import utc_now
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ProgramError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    FAILURE_RECORD,
    write_private_file,
)


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class QueryJournal(object):
    """Runs SQL and client programs and keeps what ran, in order.

    ``execute`` and ``run`` are for reads: they run in check mode too.
    ``change`` and ``run_change`` are for what changes something: in check
    mode they only record the statement (with its parameters bound) or the
    command. ``record`` keeps a statement that runs another way (a COPY
    through ``copy_expert``, say).

    ``run(argv, env, before_communicate)`` is the program runner
    (``connection.program_runner(module)``); it returns (rc, stdout, stderr).
    With ``unique`` a statement run many times (one per table) is kept once.
    """

    def __init__(self, run=None, check_mode=False, unique=False):
        self._run = run
        self.check_mode = check_mode
        self.unique = unique
        self.queries = []
        self.commands = []
        self._seen = set()
        self._lock = threading.Lock()

    def _keep(self, text):
        text = _text(text)
        with self._lock:
            if self.unique:
                if text in self._seen:
                    return
                self._seen.add(text)
            self.queries.append(text)

    def record(self, cur, statement=None, params=None):
        """Keep ``statement`` as it would be sent on ``cur`` (or the cursor's last query) without running it."""
        if statement is None:
            self._keep(cur.query)
        elif params is not None:
            self._keep(cur.mogrify(statement, params))
        elif isinstance(statement, str):
            self._keep(statement)
        else:
            self._keep(statement.as_string(cur))

    def execute(self, cur, statement, params=None):
        """Run a statement that only reads (also in check mode) and keep it.

        It is kept before it runs, so that a failed module reports the statement that failed.
        """
        self.record(cur, statement, params)
        cur.execute(statement, params)

    def change(self, cur, statement, params=None):
        """Run a statement that changes something; in check mode only keep it."""
        if self.check_mode:
            self.record(cur, statement, params)
            return
        self.execute(cur, statement, params)

    def run(self, argv, env=None, before_communicate=None):
        """Run a program that only reads (also in check mode) and keep its argv."""
        with self._lock:
            self.commands.append(list(argv))
        try:
            return self._run(list(argv), env, before_communicate)
        except OSError as exc:
            raise ProgramError("cannot run %s: %s" % (argv[0], exc.strerror or exc)) from None

    def run_change(self, argv, env=None, before_communicate=None):
        """Run a program that changes something; in check mode only keep its argv and report success."""
        if self.check_mode:
            with self._lock:
                self.commands.append(list(argv))
            return 0, "", ""
        return self.run(argv, env, before_communicate)

    def save_failure(self, run_dir, module, record):
        """Write a failed module's ``record`` (its statements among it) to a private file; return its path.

        The file goes to ``run_dir``; without one, or when it cannot be written there (a
        failure before the run directory exists), to the temporary directory, still 0600.
        """
        name = FAILURE_RECORD.format(module=module, stamp=utc_now().strftime("%Y%m%dT%H%M%S%fZ"))
        text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
        if run_dir and os.path.isdir(run_dir):
            path = os.path.join(run_dir, name)
            try:
                write_private_file(path, text)
                return path
            except (IOError, OSError):
                pass
        fd, path = tempfile.mkstemp(prefix=name[:-len(".json")] + ".", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path
