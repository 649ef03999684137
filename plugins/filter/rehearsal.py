# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rehearsal role's clock readings turned into the time of each phase (documented in rehearsal_phases.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.rehearsal import phase_report


def rehearsal_phases(marks, backup_timing="before_copy"):
    return phase_report(marks, backup_timing)


class FilterModule(object):

    def filters(self):
        return {"rehearsal_phases": rehearsal_phases}
