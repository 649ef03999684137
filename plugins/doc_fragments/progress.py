# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The live progress lines of the modules that have an action plugin of their name
    # (plugins/plugin_utils/progress.py).
    DOCUMENTATION = r'''
attributes:
  action:
    description: Runs an action plugin on the controller, which prints progress lines while the module works.
    support: full
    details:
      - The module itself runs on the target host as any module does; only the progress lines come from the
        controller.
notes:
  - While the task runs, a line of progress goes to the job output every 15 seconds (counts, sizes, the rate so far
    and an estimate of the time left; never a row's contents or a connection detail). Under AWX each line is an event
    of the running task. A run shorter than the interval prints none.
  - The variable C(classifiedads_consolidation_progress_interval) sets the interval in seconds; V(0) turns the lines
    off.
  - The lines come from the controller, which looks at the servers over the task's own O(source) and O(target)
    (with psycopg2 and a connect timeout of at most 5 seconds). When the controller cannot reach them, or has no
    psycopg2, there are no lines and the task is otherwise unaffected. Check mode, asynchronous tasks and tasks
    with C(no_log) print none.
  - During a verification (C(classifiedads.consolidation.row_count_diff)) the line gives the compared tables
    measured on both servers and being measured, and the sizes scanned. The controller plans the tables from the
    catalogs as the module does, and sees which ones are measured from the locks of the collection's active sessions
    (C(pg_locks), C(pg_stat_activity)); it writes nothing. A small table measured between two lines may be counted
    only later, so the count is a lower bound; no line says a table matched, only the result does.
'''
