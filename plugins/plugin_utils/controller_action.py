# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tells a module which ansible-playbook it works for, wherever the module runs (controller side).

A module that works on a target database records or checks the run's lease under the identity of
its ansible-playbook. On the host that runs ansible-playbook the module could find it among its
ancestors; on any other host (ssh, a container, AWX's ``consolidation_controller``) it cannot, and
every module of the run would name a different short-lived holder. So the action plugin, which runs
in a worker of ansible-playbook, puts that identity in the module's environment
(``module_utils.controller.CONTROLLER_VARIABLE``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import (
    CONTROLLER_VARIABLE,
    playbook_identity,
)


class NamingController(object):
    """Mixin for an action plugin: the modules it executes learn the identity of their ansible-playbook."""

    def _execute_module(self, *args, **kwargs):
        identity = playbook_identity()
        if identity is not None:
            environments = self._task.environment or []
            if not isinstance(environments, list):
                environments = [environments]
            # Last, so that a play's own environment cannot name another holder by accident.
            self._task.environment = environments + [{CONTROLLER_VARIABLE: json.dumps(identity, sort_keys=True)}]
        return super(NamingController, self)._execute_module(*args, **kwargs)


class ControllerAction(NamingController, NormalAction):
    """Runs the module of the same name as ``ansible.builtin.normal`` does, naming its ansible-playbook."""
