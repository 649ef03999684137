# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live progress in the job output while a long module runs (controller side).

A module's result reaches Ansible only when it ends, so the action plugin of the same name runs
the module as usual while a thread looks at the work from outside, over the task's own ``source``
and ``target`` connections, and prints a line at every interval through ansible's ``Display``.
In a worker process ``Display.display`` does not write to stdout: ansible-core (2.16 to 2.21
alike) sends it over the worker's result queue to the main process, whose results thread prints
it (``Display._final_q``, ``strategy.results_thread_main``); the queue's writes are locked, so a
second thread of the worker may use it. Under AWX, ansible-runner wraps ``Display.display`` in the
main process, so each line becomes a ``verbose`` job event of the running task.

Nothing is printed when the module ends within the first interval (no connection is even opened
then), in check mode, for an asynchronous task or a task with ``no_log``. Whatever goes wrong on the
way (no psycopg2 on the controller, a server the controller cannot reach) ends the lines without a
word: the module's own result is what counts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import threading
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.classifiedads.consolidation.plugins.plugin_utils.controller_action import NamingController

INTERVAL_VARIABLE = "classifiedads_consolidation_progress_interval"
DEFAULT_INTERVAL = 15  # seconds: the issue asks for a line at least this often during long work
STOP_WAIT = 2  # seconds the task waits for the thread once the module is done

display = Display()


def interval_seconds(value):
    """The interval ``value`` asks for, in seconds; None for no lines (0, negative or not a number)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


class ProgressReporter(threading.Thread):
    """Every ``interval`` seconds, ``say`` a line about what the probe sees, until :meth:`finish`.

    ``open_probe()`` is called once the first interval has passed; it returns an open probe (with
    ``describe(elapsed)`` and ``close()``), or None when there is nothing to look at.
    """

    def __init__(self, open_probe, say, interval, clock=time.monotonic):
        super(ProgressReporter, self).__init__(name="classifiedads-progress")
        self.daemon = True  # never keeps a worker alive
        self.open_probe = open_probe
        self.say = say
        self.interval = interval
        self.clock = clock
        self._done = threading.Event()
        # Held while a line is handed to Display. In a worker that writes to the result queue, whose lock is
        # shared with every process of the run: the worker must not exit while this thread holds it.
        self._saying = threading.Lock()

    def run(self):
        began = self.clock()
        if self._done.wait(self.interval):
            return  # a short run: nothing to say, nothing opened or even imported
        probe = None
        try:
            probe = self.open_probe()
            while probe is not None and not self._done.is_set():
                line = probe.describe(self.clock() - began)
                with self._saying:
                    if self._done.is_set():
                        break  # the module finished while we looked: its result says the rest
                    self.say(line)
                self._done.wait(self.interval)
        except Exception:  # pylint: disable=broad-except
            pass  # the lines are a courtesy: the module's own result reports every real problem
        finally:
            try:
                if probe is not None:
                    probe.close()
            except Exception:  # pylint: disable=broad-except
                pass

    def finish(self):
        """Stop: no line after this returns. A look still waiting on a server is left to the daemon thread
        (at most ``STOP_WAIT`` seconds are spent on it), never a line half handed over."""
        self._done.set()
        with self._saying:
            pass
        self.join(STOP_WAIT)


class ProgressAction(NamingController, ActionBase):
    """Runs the module of the same name, with a :class:`ProgressReporter` watching it from the controller."""

    _supports_check_mode = True
    _supports_async = True
    probe = None  # set by each action plugin: a key of progress_probes.PROBES

    def run(self, tmp=None, task_vars=None):
        result = super(ProgressAction, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        wrap_async = self._task.async_val and not getattr(self._connection, "has_native_async", False)
        reporter = None if wrap_async else self._reporter(task_vars or {})
        if reporter is not None:
            reporter.start()
        try:
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        finally:
            if reporter is not None:
                reporter.finish()
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _reporter(self, task_vars):
        interval = interval_seconds(task_vars.get(INTERVAL_VARIABLE, DEFAULT_INTERVAL))
        if interval is None or self._task.check_mode or self._task.no_log:
            return None
        kind, args = self.probe, dict(self._task.args)
        started = datetime.datetime.now(datetime.timezone.utc)
        host = task_vars.get("inventory_hostname", "")

        def open_probe():
            from ansible_collections.classifiedads.consolidation.plugins.plugin_utils import progress_probes

            return progress_probes.open_probe(kind, args, started)

        return ProgressReporter(open_probe, lambda line: display.display("[%s] %s" % (host, line) if host else line),
                                interval)
