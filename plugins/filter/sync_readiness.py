# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an online run can be cut over (documented in sync_cutover_problems.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_readiness


class FilterModule(object):

    def filters(self):
        return {"sync_cutover_problems": sync_readiness.cutover_problems}
