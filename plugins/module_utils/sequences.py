# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which sequences feed which columns: one catalog query shared by the copy and the verification.

A column takes its values from a sequence when it is serial or identity (the
sequence is owned by it: pg_depend deptype 'a' or 'i'), or when its default
calls nextval() on a sequence that another column owns or that no column owns,
possibly shared by several tables. Every such sequence must end past the copied
values, or the application's next insert fails with a duplicate key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# (table_oid, attnum, sequence_oid) for every column fed by a sequence; callers join pg_class with
# relkind 'S' on sequence_oid (the first arm also lists indexes and the like, which that join drops).
# A partition loaded on its own takes its values from its partitioned ancestors' sequences too: in PostgreSQL 15
# an identity column exists on the partitioned table only, so the third arm gives each partition's column (matched
# by name: a partition's attnum may differ) the sequences of the same column of every ancestor.
COLUMN_SEQUENCES = """
WITH fed AS (
SELECT d.refobjid AS table_oid, d.refobjsubid AS attnum, d.objid AS sequence_oid
FROM pg_catalog.pg_depend d
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.deptype IN ('a', 'i')
UNION
SELECT ad.adrelid, ad.adnum, d.refobjid
FROM pg_catalog.pg_attrdef ad
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
)
SELECT table_oid, attnum, sequence_oid FROM fed
UNION
SELECT a.attrelid, a.attnum, fed.sequence_oid
FROM fed
JOIN pg_catalog.pg_class p ON p.oid = fed.table_oid AND p.relkind = 'p'
JOIN pg_catalog.pg_attribute pa ON pa.attrelid = fed.table_oid AND pa.attnum = fed.attnum
CROSS JOIN LATERAL pg_catalog.pg_partition_tree(p.oid) t
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.relid AND a.attname = pa.attname AND NOT a.attisdropped
WHERE t.relid <> p.oid
"""


# A sequence ``s`` (pg_class alias) that no column takes its values from: the application calls nextval() itself.
FEEDS_NO_COLUMN = "NOT EXISTS (SELECT FROM (%s) u WHERE u.sequence_oid = s.oid)" % COLUMN_SEQUENCES


def next_value(last_value, is_called, increment):
    """The value nextval() would return, from a sequence's last_value/is_called."""
    return last_value + increment if is_called else last_value


def forward_setval(setval, current_last_value, current_is_called, increment):
    """``setval`` (value, is_called), or None when the sequence already stands beyond it.

    A sequence shared by several tables is continued once per table: the table
    with the lower values must not move it back behind the other's.
    """
    wanted = next_value(setval[0], setval[1], increment)
    current = next_value(current_last_value, current_is_called, increment)
    ahead = current > wanted if increment > 0 else current < wanted
    return None if ahead else setval
