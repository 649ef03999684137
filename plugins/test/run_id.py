# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``is classifiedads.consolidation.run_id``: the roles check a run id by the rule the modules use (run_id.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import run_id_problem


def run_id(value):
    """Whether ``value`` can name a run (and its backup set): runfiles.RUN_ID_PATTERN."""
    return run_id_problem(value) is None


class TestModule(object):

    def tests(self):
        return {"run_id": run_id}
