# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""row_count_diff runs as a module; this action plugin adds the live progress lines (plugin_utils/progress.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.plugin_utils.progress import ProgressAction


class ActionModule(ProgressAction):
    probe = "verify"
