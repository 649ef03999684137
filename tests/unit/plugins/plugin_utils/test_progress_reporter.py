"""The progress thread (plugin_utils/progress.py): silent for short runs, silent when it cannot look,
never a line after the module is done."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.progress import Sample, progress_line
from ansible_collections.classifiedads.consolidation.plugins.plugin_utils.progress import (
    ProgressReporter,
    interval_seconds,
)


class Probe:
    """Counts what the thread asks; ``fail_open``/``fail_sample`` stand for a server the controller cannot reach,
    ``nothing`` for a task whose options give nothing to look at."""

    task = "data_copy"

    def __init__(self, fail_open=False, fail_sample=False, nothing=False):
        self.fail_open = fail_open
        self.fail_sample = fail_sample
        self.nothing = nothing
        self.opened = self.samples = self.closed = 0
        self.sampled = threading.Event()

    def open(self):
        """What progress_probes.open_probe does: an open probe, None, or the connection's error."""
        self.opened += 1
        if self.fail_open:
            raise OSError("could not connect to server: Connection refused")
        return None if self.nothing else self

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
    reporter = ProgressReporter(probe.open, lines.append, interval=30)
    reporter.start()
    reporter.finish()
    assert not reporter.is_alive()
    assert (probe.opened, lines) == (0, [])


def test_a_server_the_controller_cannot_reach_ends_the_lines_without_a_word():
    probe, lines = Probe(fail_open=True), []
    reporter = ProgressReporter(probe.open, lines.append, interval=0.01)
    reporter.start()
    reporter.join(5)
    assert not reporter.is_alive()
    assert (probe.opened, probe.samples, lines) == (1, 0, [])


def test_nothing_to_look_at_ends_the_thread_quietly():
    probe, lines = Probe(nothing=True), []
    reporter = ProgressReporter(probe.open, lines.append, interval=0.01)
    reporter.start()
    reporter.join(5)
    assert not reporter.is_alive()
    assert (probe.opened, probe.samples, probe.closed, lines) == (1, 0, 0, [])


def test_a_look_that_fails_midway_ends_the_lines_and_closes_the_probe():
    probe, lines = Probe(fail_sample=True), []
    reporter = ProgressReporter(probe.open, lines.append, interval=0.01)
    reporter.start()
    reporter.join(5)
    assert not reporter.is_alive()
    assert (probe.samples, probe.closed, lines) == (1, 1, [])


def test_lines_come_every_interval_until_the_module_is_done():
    probe, lines = Probe(), []
    reporter = ProgressReporter(probe.open, lines.append, interval=0.01)
    reporter.start()
    assert probe.sampled.wait(5)
    reporter.finish()
    said = len(lines)
    assert not reporter.is_alive() and probe.closed == 1
    assert said >= 1 and lines[0].startswith("data_copy: 1/2 tables")
    assert len(lines) == said  # nothing after finish()


@pytest.mark.parametrize(("value", "seconds"), [
    (15, 15.0), ("0.5", 0.5), (0, None), (-1, None), ("soon", None), (None, None),
])
def test_an_interval_is_a_positive_number_of_seconds_anything_else_means_no_lines(value, seconds):
    assert interval_seconds(value) == seconds
