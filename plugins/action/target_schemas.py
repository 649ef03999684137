# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""target_schemas runs as a module; this action plugin names its ansible-playbook for the run's lease."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    pass
