# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The online copy's slots: which snapshot each legacy database is copied from, and what a rerun does.

With ``sync: online`` the copy of a legacy database must hold exactly the state at its slot's
consistent point: the applier streams every later transaction from that slot, so a table read from
any other snapshot would lose or repeat changes. Hence, per legacy database:

* no slot of this run yet: create publication and slot, copy from the slot's snapshot;
* a slot whose copy completed (recorded in ``<state_schema>.sync_slots``): nothing to copy, the slot
  is left alone;
* a slot whose copy did not complete, or a completed copy whose slot is gone: the snapshot is gone
  and the stream does not fit the tables copied so far. Drop slot and publication, and copy this run's
  copied tables of that database again (emptied) under a new slot: the survey no longer counts them as
  complete, and each table's reload replaces its record in ``copied_tables``.

Tables this run copied under another snapshot (an earlier offline attempt with the same run id) are
copied again too, for the same reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, sync_names, sync_slots
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, psycopg2, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

CREATE = "create"
KEEP = "keep"
RECREATE = "recreate"


def slot_decision(record, slot_exists):
    """What the copy does with one legacy database's slot.

    ``record`` is this run's row of ``sync_slots`` for it as {"copied_at": ...}, or None.
    """
    if record is None and not slot_exists:
        return CREATE
    if record is not None and record.get("copied_at") is not None and slot_exists:
        return KEEP
    return RECREATE


def recreate_reason(record, slot_exists):
    if record is None:
        return "a slot of this run exists with no copy recorded from it"
    if not slot_exists:
        return "its slot is gone, so the stream no longer continues the copied tables"
    return "its copy did not complete, and the slot's snapshot ended with that attempt"


class OnlineCopy(object):
    """The slots of one online copy. ``say`` takes progress lines; changes go through ``journal``."""

    def __init__(self, source, run_id, prefix, state, journal, say):
        self.source = source
        self.run_id = run_id
        self.prefix = sync_names.check_prefix(prefix)
        self.state = state
        self.journal = journal
        self.say = say
        self.records = {}
        self.existing = None  # this run's slot names on the source, read with the first database
        self.created = {}  # source database -> sync_slots.SlotCreation, of this invocation
        self.kept = set()
        # (source database, source table): copied by this run from another snapshot, to be emptied and copied again
        self.refill = set()
        self.results = []
        self.changed = False

    def table(self):
        return sql.SQL("{}.{}").format(sql.Identifier(self.state.schema), sql.Identifier(sync_slots.SLOTS_TABLE))

    def prepare(self, control):
        """Create the state table (never in check mode) and read this run's records of it."""
        if control is not None:
            with control.cursor() as cur:
                cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (self.table().as_string(cur),))
                if not cur.fetchone()[0]:
                    if self.journal.check_mode:
                        control.rollback()
                        return
                    self.journal.change(cur, sql.SQL(sync_slots.SLOTS_TABLE_DDL).format(table=self.table()))
                    self.changed = True
                cur.execute(sql.SQL("SELECT source_database, slot_name, consistent_point::text, copied_at "
                                    "FROM {} WHERE run_id = %s").format(self.table()), (self.run_id,))
                self.records = dict((row[0], dict(slot_name=row[1], consistent_point=row[2], copied_at=row[3]))
                                    for row in cur.fetchall())
            control.commit()

    def snapshot_for(self, module, conn, control, mapped_tables):
        """The SlotCreation whose snapshot the database's coordinator imports; None: it exports its own.

        ``conn`` is the database's (autocommit) source session, ``mapped_tables()`` its mapped tables as
        (schema, table) pairs (raises CopyPlanError, which the survey reports itself).
        """
        database = module["source_database"]
        name = sync_names.slot_name(self.run_id, database, self.prefix)
        if self.existing is None:
            self.existing = set(slot["slot_name"] for slot in sync_slots.list_slots(conn, self.prefix, self.run_id))
        record = self.records.get(database)
        decision = slot_decision(record, name in self.existing)
        entry = dict(source_database=database, slot_name=name,
                     publication_name=sync_names.publication_name(self.run_id, database, self.prefix),
                     consistent_point=(record or {}).get("consistent_point"))
        if decision == KEEP:
            self.kept.add(database)
            self.results.append(dict(entry, action="kept"))
            self.say("slot %s of %s: its copy is complete, nothing to copy (slot left alone)"
                     % (quote_ident(name), quote_ident(database)))
            return None
        try:
            tables = mapped_tables()
        except copy_plan.CopyPlanError:
            return None
        reason = recreate_reason(record, name in self.existing) if decision == RECREATE else None
        # The tables this run copied keep their records until their reload replaces them (in each table's
        # own transaction), so a run cut off anywhere still knows them; the survey plans them as reloads.
        refill = self._copied_tables(control, database) if control is not None else []
        self.refill.update((database, table) for table in refill)
        if self.journal.check_mode:
            self.results.append(dict(entry, action="would_" + decision, consistent_point=None))
            self.say("would %s publication and replication slot %s of %s%s%s"
                     % (decision, quote_ident(name), quote_ident(database), ": " + reason if reason else "",
                        " and copy again the %d tables this run had copied from it" % len(refill) if refill else ""))
            self.changed = True
            return None
        # Each step leaves a state the next run reads right, wherever this one stops: the record says "not
        # copied" before the old slot goes.
        if record is not None and record.get("copied_at") is not None:
            self._record(control, sql.SQL("UPDATE {} SET copied_at = NULL WHERE run_id = %s AND source_database = %s"),
                         (self.run_id, database))
        if decision == RECREATE:
            with conn.cursor() as cur:
                sync_slots.drop_slot(cur, self.journal, name)
                sync_slots.drop_publication(cur, self.journal, entry["publication_name"])
        creation = sync_slots.create(self.source, database, self.run_id, self.prefix, tables, self.journal)
        self.created[database] = creation
        self._record(control, sql.SQL(
            "INSERT INTO {} (run_id, source_database, slot_name, consistent_point, snapshot) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, source_database) DO UPDATE SET "
            "slot_name = EXCLUDED.slot_name, consistent_point = EXCLUDED.consistent_point, "
            "snapshot = EXCLUDED.snapshot, created_at = now(), copied_at = NULL"),
            (self.run_id, database, creation.slot_name, creation.consistent_point, creation.snapshot))
        self.changed = True
        self.results.append(dict(entry, action=decision + "d", consistent_point=creation.consistent_point))
        line = "created publication and replication slot %s of %s at consistent point %s" % (
            quote_ident(name), quote_ident(database), creation.consistent_point)
        if reason:
            line = "%s: %s; dropped it, %s" % (quote_ident(database), reason, line)
        if refill:
            line += "; the %d tables this run had copied from it are emptied and copied again" % len(refill)
        self.say(line)
        return creation

    def _copied_tables(self, control, database):
        """The tables this run copied of ``database`` (not from the slot about to be made)."""
        with control.cursor() as cur:
            copied = sorted(self.state.recorded_complete(cur))
        control.rollback()
        return [table for recorded_database, table in copied if recorded_database == database]

    def _record(self, control, statement, params):
        """Change the run's slot records, committed at once."""
        with control.cursor() as cur:
            self.journal.change(cur, statement.format(self.table()), params)
        control.commit()

    def check_kept(self, jobs):
        """A table to load in a database whose online copy is complete was not in its snapshot: refuse."""
        late = sorted(job.source_label for job in jobs if job.source_database in self.kept and job.loads)
        if late:
            raise copy_plan.CopyPlanError([
                "the online copy of this run is complete for their databases, but these tables were not copied "
                "from their slots' snapshots (the mapping changed since): %s (fix: roll the run back and run sync "
                "again with a new run id)" % ", ".join(late)])

    def mark_copied(self, control):
        """Every table is loaded: a rerun leaves these slots alone."""
        if not self.created:
            return
        with control.cursor() as cur:
            self.journal.change(cur, sql.SQL("UPDATE {} SET copied_at = now() WHERE run_id = %s AND "
                                             "source_database = ANY(%s)").format(self.table()),
                                (self.run_id, sorted(self.created)))
        control.commit()

    def abandon(self):
        """The plan failed before any row moved: drop the slots created for it (they would only keep WAL).

        The plan's own error is what the run reports: one while dropping becomes a progress line.
        """
        for database, creation in sorted(self.created.items()):
            creation.close()
            try:
                conn = connect(self.source, database, autocommit=True)
                try:
                    with conn.cursor() as cur:
                        sync_slots.drop_slot(cur, self.journal, creation.slot_name)
                        sync_slots.drop_publication(cur, self.journal, creation.publication)
                finally:
                    conn.close()
            except (psycopg2.Error, ConsolidationError) as exc:
                self.say("could not drop replication slot %s of %s (%s): the next run replaces it, or sync_slots "
                         "state=absent drops it" % (quote_ident(creation.slot_name), quote_ident(database),
                                                    str(exc).strip()))
                continue
            self.say("dropped publication and replication slot %s of %s: the copy did not start"
                     % (quote_ident(creation.slot_name), quote_ident(database)))
        self.created = {}

    def close(self):
        for creation in self.created.values():
            creation.close()
