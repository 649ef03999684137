# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which ansible-playbook a module works for, whether it still lives, and whose process a pid is.

Ansible runs a module in a process of its own: a worker forked by ansible-playbook
(which puts itself in a new session) starts ``/bin/sh -c python AnsiballZ_<module>.py``.
Killing ansible-playbook, even its whole process group, leaves the worker and the
module running, unseen. So a module records, when it starts, its chain of ancestors
up to the outermost ansible-playbook process, each as (pid, start time): a pid alone
is reused once its process is gone, a pid with its start time (field 22 of
``/proc/<pid>/stat``, clock ticks since boot) names one process for the life of the
machine. The controller is alive while every process of the chain still is.

The same identity (host, machine, boot, pid namespace, pid, start time) is what the
lease records of its holder: a holder on this host and in this pid namespace can be
proven gone; one elsewhere cannot, and only an explicit takeover moves it.

A module on another host than ansible-playbook (ssh, a container, AWX's
``consolidation_controller``) has no ansible-playbook among its ancestors, so the
collection's action plugins compute the identity of ansible-playbook where it runs
(:func:`playbook_identity`) and hand it to the module in ``CONTROLLER_VARIABLE``:
every module of one ansible-playbook run, on any host, then names the same holder.
The chain the module watches stays its own (on a remote host, its parent shell).

Parsing is pure (``parse_stat``, ``is_ansible_playbook``, ``ancestry``, ``holder_state``);
the readers of /proc are thin.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
import threading

ALIVE = "alive"
GONE = "gone"
UNKNOWN = "unknown"

PLAYBOOK_PROGRAM = "ansible-playbook"
# The environment variable by which an action plugin tells a module whose ansible-playbook it works for.
CONTROLLER_VARIABLE = "CLASSIFIEDADS_CONSOLIDATION_CONTROLLER"


def parse_stat(text):
    """(ppid, start time in clock ticks, state letter) from the text of ``/proc/<pid>/stat``.

    The command name (field 2) sits in parentheses and may itself hold spaces and
    parentheses, so the fields are counted from the last ')'.
    """
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19]), fields[0]


def is_ansible_playbook(argv):
    """Whether a command line is ansible-playbook's (run directly, or as a script by an interpreter)."""
    return any(os.path.basename(arg).startswith(PLAYBOOK_PROGRAM) for arg in argv[:2])


def ancestry(pid, read):
    """The chain [(pid, start), ...] from ``pid``'s parent up to the outermost ansible-playbook, or None.

    ``read(pid)`` returns (ppid, start, argv) of a live process, or None. The chain runs
    through the worker processes ansible-playbook forks (same command line) up to the
    first ancestor whose parent is not ansible-playbook: that one is the controller, the
    last entry. None when no ancestor is ansible-playbook (a module run by hand or by a test).
    """
    chain = []
    found = False
    info = read(pid)
    while info is not None and info[0] > 1:
        parent = read(info[0])
        if parent is None:
            break
        if found and not is_ansible_playbook(parent[2]):
            break
        chain.append((info[0], parent[1]))
        found = found or is_ansible_playbook(parent[2])
        info = parent
    return chain if found else None


def holder_state(holder, here, started_of):
    """ALIVE, GONE or UNKNOWN for a recorded holder (a dict of :func:`identity` keys).

    ``here`` is this machine's identity; ``started_of(pid)`` the start time of a live
    process, or None. Only a holder on this machine, in this boot and pid namespace, can
    be proven gone (its pid is free, or names a process started at another time); a
    holder elsewhere, or one recorded without a pid, is UNKNOWN.
    """
    if (holder.get("host"), holder.get("machine_id")) != (here["host"], here["machine_id"]):
        return UNKNOWN
    if holder.get("boot_id") != here["boot_id"]:
        return GONE  # the machine restarted since: every process of that boot is gone
    if holder.get("pid_namespace") != here["pid_namespace"] or holder.get("pid") is None:
        return UNKNOWN
    started = started_of(holder["pid"])
    return ALIVE if started is not None and started == holder.get("pid_started") else GONE


def _read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def read_process(pid):
    """(ppid, start, argv) of a live process, None for a free pid or a zombie (it has exited)."""
    stat = _read_text("/proc/%d/stat" % pid)
    if stat is None:
        return None
    ppid, started, state = parse_stat(stat)
    if state in ("Z", "X"):
        return None
    argv = (_read_text("/proc/%d/cmdline" % pid) or "").split("\0")
    return ppid, started, argv


def started_of(pid):
    info = read_process(pid)
    return info[1] if info else None


def machine():
    """This machine's identity as the lease compares it (the host name is also what people read)."""
    machine_id = (_read_text("/etc/machine-id") or _read_text("/var/lib/dbus/machine-id") or "").strip()
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    return {
        "host": socket.gethostname(),
        "machine_id": machine_id,
        "boot_id": (_read_text("/proc/sys/kernel/random/boot_id") or "").strip(),
        "pid_namespace": namespace,
    }


def playbook_identity():
    """The identity of the ansible-playbook this process runs in (an action plugin in one of its workers), or None."""
    chain = ancestry(os.getpid(), read_process)
    return dict(machine(), pid=chain[-1][0], pid_started=chain[-1][1]) if chain else None


class Controller(object):
    """The ansible-playbook process this module works for, found once at start.

    A module started by anything else (by hand, by a test, by ansible-playbook on another
    host over ssh, where the controller cannot be seen) watches its parent process; its
    lease identity is then the one its action plugin passed, if any (:meth:`identity`).
    """

    def __init__(self, pid=None):
        pid = pid or os.getpid()
        self.chain = ancestry(pid, read_process)
        if self.chain is None:
            parent = read_process(pid)
            self.chain = [(parent[0], started_of(parent[0]))] if parent else []
        self.pid, self.started = self.chain[-1] if self.chain else (None, None)

    def identity(self):
        """The holder this module's run is: ansible-playbook as its action plugin named it, else the chain's end."""
        named = os.environ.get(CONTROLLER_VARIABLE)
        if named:
            return json.loads(named)
        return dict(machine(), pid=self.pid, pid_started=self.started)

    def alive(self):
        """Whether every process between this module and ansible-playbook still runs (a few /proc reads)."""
        return all(started_of(pid) == started for pid, started in self.chain)

    def gone_reason(self):
        return ("the ansible-playbook (or other process) that started this module, pid %s, is gone: the module "
                "stopped at a table boundary and rolled back the table in progress" % self.pid)


class Watchdog(object):
    """Polls ``controller.alive()`` from a daemon thread and calls ``on_gone()`` once when it is not."""

    def __init__(self, controller, on_gone, interval=0.5):
        self.controller = controller
        self.on_gone = on_gone
        self.interval = interval
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        if self.controller.pid is None:
            return self
        self._thread = threading.Thread(target=self._watch, name="controller-watchdog")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(self.interval):
            if not self.controller.alive():
                self.on_gone()
                return

    def stop(self):
        self._stop.set()
