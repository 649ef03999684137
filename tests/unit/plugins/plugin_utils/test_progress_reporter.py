"""The progress thread (plugin_utils/progress.py): silent for short runs, silent when it cannot look,
never a line after the module is done."""

from __future__ import annotations

import threading

from ansible_collections.classifiedads.consolidation.plugins.module_utils.progress import Sample, progress_line
from ansible_collections.classifiedads.consolidation.plugins.plugin_utils.progress import ProgressReporter


class Probe:
    """Counts what the thread asks; ``fail_open``/``fail_sample`` stand for a server the controller cannot reach."""

    task = "data_copy"

    def __init__(self, fail_open=False, fail_sample=False):
        self.fail_open = fail_open
        self.fail_sample = fail_sample
        self.opened = self.samples = self.closed = 0
        self.sampled = threading.Event()

    def open(self):
        self.opened += 1
        if self.fail_open:
            raise OSError("could not connect to server: Connection refused")

    def describe(self, elapsed):
        self.samples += 1
        self.sampled.set()
        if self.fail_sample:
            raise OSError("server closed the connection unexpectedly")
        return progress_line(self.task, Sample(1, 2, 10, 0, 10, 20), elapsed)

    def close(self):
        self.closed += 1


def test_a_run_shorter_than_the_interval_opens_nothing_and_says_nothing():
    probe, lines = Probe(), []
    reporter = ProgressReporter(probe, lines.append, interval=30)
    reporter.start()
    reporter.finish()
    assert not reporter.is_alive()
    assert (probe.opened, lines) == (0, [])


def test_a_server_the_controller_cannot_reach_ends_the_lines_without_a_word():
    probe, lines = Probe(fail_open=True), []
    reporter = ProgressReporter(probe, lines.append, interval=0.01)
    reporter.start()
    reporter.join(5)
    assert not reporter.is_alive()
    assert (probe.opened, probe.samples, probe.closed, lines) == (1, 0, 1, [])


def test_a_look_that_fails_midway_ends_the_lines_and_closes_the_probe():
    probe, lines = Probe(fail_sample=True), []
    reporter = ProgressReporter(probe, lines.append, interval=0.01)
    reporter.start()
    reporter.join(5)
    assert not reporter.is_alive()
    assert (probe.samples, probe.closed, lines) == (1, 1, [])


def test_lines_come_every_interval_until_the_module_is_done():
    probe, lines = Probe(), []
    reporter = ProgressReporter(probe, lines.append, interval=0.01)
    reporter.start()
    assert probe.sampled.wait(5)
    reporter.finish()
    said = len(lines)
    assert not reporter.is_alive() and probe.closed == 1
    assert said >= 1 and lines[0].startswith("data_copy: 1/2 tables")
    assert len(lines) == said  # nothing after finish()
