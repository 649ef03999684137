# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The applier's process: detached from the Ansible job, supervised, stopped on request.

An applier must outlive the task that starts it (sync.yml ends, the application keeps writing, and
cutover.yml comes later), so :func:`start` double-forks a supervisor into a session of its own, with
its standard streams on the log file of the run directory. The supervisor forks one worker, which
runs the :class:`sync_apply.Applier`, and starts a crashed worker again with a growing pause
(``restarts`` + 1). A fatal error (DDL on the source, a diverged target) ends it for good with state
``failed``: a restart would stop at the same change. SIGTERM to the supervisor reaches the worker,
which abandons an open transaction (never half of one is committed) and ends ``stopped``.

Everything the worker needs is imported before the fork: Ansible removes the module's files once
the module has exited. Passwords stay in the memory of the processes (never argv or environment).
A supervisor is alive when its pid runs a process started at the recorded time (a pid can be reused).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import json
import os
import select
import signal
import time
import traceback

from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import started_of
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import utc_timestamp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import error_problems
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    append_private,
    read_json,
    write_private_json,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_apply import (
    FAILED,
    STARTING,
    STOPPED,
    ApplyStopped,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_state import applier_alive

FATAL_EXIT = 3  # the worker's exit status after ApplyStopped: not restarted
STARTED_WITHIN = 15.0  # seconds the module waits for the supervisor to record itself
MAX_PAUSE = 30.0  # the longest pause before a crashed worker starts again
STEADY = 60.0  # a worker that ran this long before crashing starts again without delay growth
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def restart_pause(consecutive):
    """Seconds to wait before the ``consecutive``-th restart in a row (1, 2, 4, ... up to MAX_PAUSE)."""
    return min(MAX_PAUSE, 2.0 ** max(0, consecutive - 1))


def read_record(files):
    return read_json(files["pid"])


def read_status(files):
    return read_json(files["status"])


class Supervisor(object):
    """The detached process of one legacy database: keeps a worker running ``make_applier(report, log)``."""

    def __init__(self, files, run_id, slot, make_applier):
        self.files = files
        self.run_id = run_id
        self.slot = slot
        self.make_applier = make_applier
        self.worker = None
        self.stopping = False
        self.restarts = 0
        self.last_status = {"source_database": None, "slot_name": slot}

    def log(self, line):
        append_private(self.files["log"], "%s [%d] %s\n" % (utc_timestamp(), os.getpid(), line))

    def report(self, status, pid=True):
        """Write the status file: the worker's status and pid, or (``pid`` False) the supervisor's, between workers."""
        self.last_status = dict(status, pid=os.getpid() if pid else None, restarts=self.restarts)
        write_private_json(self.files["status"], self.last_status)

    def _on_term(self, *_args):
        self.stopping = True
        if self.worker:
            try:
                os.kill(self.worker, signal.SIGTERM)
            except OSError:
                pass

    def _detach(self, keep):
        """Standard streams to /dev/null and the log; every other inherited descriptor closed.

        The module's own connections (the run's lease among them) stay the module's: closing the
        inherited descriptors sends nothing on those sockets.
        """
        devnull = os.open(os.devnull, os.O_RDONLY)
        log = os.open(self.files["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd != keep:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def run(self, ready_fd):
        """The supervisor's life; never returns (os._exit, so that nothing of the module's process runs here)."""
        code = 1
        try:
            self._detach(ready_fd)
            signal.signal(signal.SIGTERM, self._on_term)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            record = {"pid": os.getpid(), "start_time": started_of(os.getpid()), "slot_name": self.slot,
                      "run_id": self.run_id}
            write_private_json(self.files["pid"], record)
            # A status left by an applier that stopped for good (DDL) would read as this one's failure until its
            # worker writes: it starts afresh, keeping the counts.
            self.report(dict(read_status(self.files) or {}, state=STARTING, error=None, updated_at=utc_timestamp()),
                        pid=False)
            self.log("applier supervisor started for slot %s" % self.slot)
            os.write(ready_fd, json.dumps(record).encode("utf-8"))
            os.close(ready_fd)
            self._supervise()
            code = 0
        except BaseException:  # pylint: disable=broad-except
            self.log("supervisor error: %s" % traceback.format_exc().replace("\n", " | "))
        finally:
            os._exit(code)

    def _supervise(self):
        consecutive = 0
        while not self.stopping:
            began = time.time()
            self.worker = os.fork()
            if self.worker == 0:
                self._work()
            _pid, status = os.waitpid(self.worker, 0)
            self.worker = None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
            if code == 0 or code == FATAL_EXIT:
                return
            if self.stopping:
                self.report(dict(read_status(self.files) or {}, state=STOPPED, updated_at=utc_timestamp()), pid=False)
                return
            consecutive = 1 if time.time() - began >= STEADY else consecutive + 1
            self.restarts += 1
            pause = restart_pause(consecutive)
            self.log("worker ended with %s; starting it again in %.0f s (restart %d)"
                     % ("signal %d" % -code if code < 0 else "status %d" % code, pause, self.restarts))
            self.report(dict(read_status(self.files) or {}, state=STARTING, updated_at=utc_timestamp()), pid=False)
            deadline = time.time() + pause
            while not self.stopping and time.time() < deadline:
                time.sleep(0.2)
        self.report(dict(read_status(self.files) or {}, state=STOPPED, updated_at=utc_timestamp()), pid=False)

    def _work(self):
        code = 1
        try:
            applier = self.make_applier(self.report, self.log)
            signal.signal(signal.SIGTERM, applier.stop)
            # The loop waits in select() for the stream; the signal's byte on this pipe ends the wait at once.
            applier.wake_fd = wake_on_signal()
            # A supervisor killed outright must not leave its worker streaming where no stop can reach it.
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if self.stopping:
                applier.stop()
            applier.run()
            code = 0
        except ApplyStopped as exc:
            self.log("stopped for good: %s" % exc)
            self.report(dict(self.last_status, state=FAILED, error=str(exc), updated_at=utc_timestamp()))
            code = FATAL_EXIT
        except BaseException as exc:  # pylint: disable=broad-except
            problems = error_problems(exc) if isinstance(exc, Exception) else None
            reason = "; ".join(problems) if problems else traceback.format_exc().replace("\n", " | ")
            self.log("worker error (it starts again): %s" % reason)
            # status shows why it is starting again, until the next worker reaches its slot
            self.report(dict(self.last_status, error=reason, updated_at=utc_timestamp()))
        finally:
            os._exit(code)


def start(files, run_id, slot, make_applier):
    """Start the detached supervisor of one legacy database; returns its pid record once it runs."""
    directory = os.path.dirname(files["pid"])
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    supervisor = Supervisor(files, run_id, slot, make_applier)
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(ready_read)
            os.setsid()  # no terminal, no process group of the job: the job's end does not signal it
            if os.fork() == 0:
                supervisor.run(ready_write)
        finally:
            os._exit(0)
    os.close(ready_write)
    try:
        os.waitpid(child, 0)
        answer = b""
        deadline = time.time() + STARTED_WITHIN
        while time.time() < deadline:
            readable, _w, _x = select.select([ready_read], [], [], max(0.0, deadline - time.time()))
            if not readable:
                break
            chunk = os.read(ready_read, 4096)
            if not chunk:
                break
            answer += chunk
    finally:
        os.close(ready_read)
    if not answer:
        raise ConsolidationError("the applier of slot %s did not start within %.0f s: see its log %s"
                                 % (slot, STARTED_WITHIN, files["log"]))
    return json.loads(answer.decode("utf-8"))


def wake_on_signal():
    """A pipe's read end that receives a byte whenever a signal arrives (signal.set_wakeup_fd)."""
    read_end, write_end = os.pipe()
    for end in (read_end, write_end):
        os.set_blocking(end, False)
    signal.set_wakeup_fd(write_end)
    return read_end


def stop(files, timeout):
    """SIGTERM to a live supervisor and wait until it has ended; returns whether one was running."""
    return stop_all([files], timeout) == [True]


def stop_all(files_list, timeout):
    """SIGTERM to every live supervisor at once, then wait for all (the cutover's window pays the slowest
    stop, not their sum); per entry, whether one was running."""
    records = []
    for files in files_list:
        record = read_record(files)
        try:
            if applier_alive(record):
                os.kill(int(record["pid"]), signal.SIGTERM)
                records.append(record)
                continue
        except OSError:
            pass
        records.append(None)
    deadline = time.time() + timeout
    for files, record in zip(files_list, records):
        while record is not None and applier_alive(record):
            if time.time() >= deadline:
                raise ConsolidationError(
                    "the applier of slot %s (pid %s) did not stop within %s s after SIGTERM: see its log %s; raise "
                    "stop_timeout, or end it with kill -KILL %s (its open transaction is rolled back, nothing is lost)"
                    % (record.get("slot_name"), record["pid"], timeout, files["log"], record["pid"]))
            time.sleep(0.05)
    return [record is not None for record in records]
