# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an online run can be cut over: a pure function of sync_status's answer.

``databases`` is the ``sync_status`` module's list, one entry per legacy database (slot, lag,
progress, applier). Before cutover.yml stops the application, the sync role refuses what
:func:`cutover_problems` finds: a cutover that cannot catch up must not start the downtime.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def cutover_problems(databases):
    """What keeps a run from catching up, per legacy database; empty when the cutover may stop the application."""
    problems = []
    for entry in databases:
        name = entry["source_database"]
        applier = entry.get("applier") or {}
        if not entry.get("slot_exists"):
            problems.append("%s has no replication slot %s: its changes since the copy cannot be applied (fix: roll "
                            "back with rollback.yml and run sync.yml again)" % (name, entry.get("slot_name")))
        elif applier.get("state") == "failed":
            problems.append("the applier of %s stopped for good: %s" % (
                name, applier.get("error") or "no error recorded"))
    return problems
