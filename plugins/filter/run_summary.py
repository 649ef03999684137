# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The closing summary of a consolidation run (documented in run_summary.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import run_summary as summary


def run_summary(plan, verification=None, failed_task=None, check_mode=False, decommissioned=False, playbook=None,
                drained=False):
    return summary.run_summary(plan, verification, failed_task, check_mode, decommissioned, playbook, drained)


class FilterModule(object):

    def filters(self):
        return {"run_summary": run_summary}
