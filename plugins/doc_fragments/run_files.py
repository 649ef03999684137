# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The run's handles: the run directory and the backup set
    # (plugins/module_utils/module.py argument_spec(run_files=...) holds the matching spec,
    # plugins/module_utils/runfiles.py the file names).
    DOCUMENTATION = r'''
options:
  run_dir:
    description:
      - The run directory, C(<run_root>/<run id>). It holds the run's record, C(plan.json), and its reports
        (C(verification.json)); C(decommission.json) and C(rollback.json) are written there.
    type: path
    required: true
  backup_root:
    description: Directory that holds the backup sets, one C(<backup_root>/<set_id>) per run.
    type: path
    required: true
  set_id:
    description:
      - The backup set of the run (the run id in this collection).
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, up to 64 characters.
    type: str
    required: true
'''
