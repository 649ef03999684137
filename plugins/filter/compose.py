# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Compose services run, read from ``docker compose ps --all --format json`` (documented in compose_state.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.errors import AnsibleFilterError

# A restarting container counts as running: stopping it is needed, starting it is not.
RUNNING_STATES = ("running", "restarting")


def containers(ps_output):
    """The container objects of ``ps --format json``: one array (Compose before 2.21) or one object per line."""
    try:
        if ps_output.strip().startswith("["):
            return json.loads(ps_output)
        return [json.loads(line) for line in (line.strip() for line in ps_output.splitlines()) if line]
    except ValueError as exc:
        raise AnsibleFilterError("docker compose ps --format json printed something that is not JSON: %s"
                                 % exc) from None


def compose_state(ps_output, services):
    """``services`` split into those with a running container and the others, each in the given order."""
    running_now = set(container.get("Service") for container in containers(ps_output)
                      if container.get("State") in RUNNING_STATES)
    return {"running": [service for service in services if service in running_now],
            "stopped": [service for service in services if service not in running_now]}


class FilterModule(object):

    def filters(self):
        return {"compose_state": compose_state}
