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
  and the stream does not fit the tables copied so far. Drop slot and publication, forget this run's
  copied tables of that database, empty and copy them again under a new slot.

Tables this run copied under another snapshot (an earlier offline attempt with the same run id) are
forgotten and copied again too, for the same reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, sync_names, sync_slots
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident

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
        self.existing = set()
        self.created = {}  # source database -> sync_slots.SlotCreation, of this invocation
        self.kept = set()
        self.refill = set()  # (source database, source table): copied by this run, to be emptied and copied again
        self.results = []
        self.changed = False

    def table(self):
        return sql.SQL("{}.{}").format(sql.Identifier(self.state.schema), sql.Identifier(sync_slots.SLOTS_TABLE))

    def prepare(self, control):
        """Create the state table (never in check mode) and read this run's records and slots."""
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

    def read_slots(self, conn):
        self.existing = set(slot["slot_name"] for slot in sync_slots.list_slots(conn, self.prefix, self.run_id))

    def snapshot_for(self, module, conn, control, mapped_tables):
        """The SlotCreation whose snapshot the database's coordinator imports; None: it exports its own.

        ``conn`` is the database's (autocommit) source session, ``mapped_tables()`` its mapped tables as
        (schema, table) pairs (raises CopyPlanError, which the survey reports itself).
        """
        database = module["source_database"]
        name = sync_names.slot_name(self.run_id, database, self.prefix)
        if not self.existing:
            self.read_slots(conn)
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
        if self.journal.check_mode:
            self.results.append(dict(entry, action="would_" + decision, consistent_point=None))
            self.say("would %s publication and replication slot %s of %s%s"
                     % (decision, quote_ident(name), quote_ident(database), ": " + reason if reason else ""))
            self.changed = True
            return None
        if decision == RECREATE:
            with conn.cursor() as cur:
                sync_slots.drop_slot(cur, self.journal, name)
                sync_slots.drop_publication(cur, self.journal, entry["publication_name"])
        forgotten = self._forget(control, database)
        creation = sync_slots.create(self.source, database, self.run_id, self.prefix, tables, self.journal)
        self.created[database] = creation
        with control.cursor() as cur:
            self.journal.change(cur, sql.SQL(
                "INSERT INTO {} (run_id, source_database, slot_name, consistent_point, snapshot) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, source_database) DO UPDATE SET "
                "slot_name = EXCLUDED.slot_name, consistent_point = EXCLUDED.consistent_point, "
                "snapshot = EXCLUDED.snapshot, created_at = now(), copied_at = NULL").format(self.table()),
                (self.run_id, database, creation.slot_name, creation.consistent_point, creation.snapshot))
        control.commit()
        self.changed = True
        self.results.append(dict(entry, action=decision + "d", consistent_point=creation.consistent_point))
        line = "created publication and replication slot %s of %s at consistent point %s" % (
            quote_ident(name), quote_ident(database), creation.consistent_point)
        if reason:
            line = "%s: %s; dropped it, %s" % (quote_ident(database), reason, line)
        if forgotten:
            line += "; the %d tables this run had copied from it are emptied and copied again" % len(forgotten)
        self.say(line)
        return creation

    def _forget(self, control, database):
        """Forget this run's copied tables of ``database``: they were not read from the new slot's snapshot."""
        with control.cursor() as cur:
            if not self.state.tables_exist(cur)[0]:
                control.rollback()
                return []
            self.journal.change(cur, sql.SQL("DELETE FROM {} WHERE run_id = %s AND source_database = %s "
                                             "RETURNING source_table").format(self.state.table("copied_tables")),
                                (self.run_id, database))
            forgotten = [row[0] for row in cur.fetchall()]
        control.commit()
        self.refill.update((database, table) for table in forgotten)
        return forgotten

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
        """The plan failed before any row moved: drop the slots created for it (they would only keep WAL)."""
        for database, creation in sorted(self.created.items()):
            creation.close()
            conn = connect(self.source, database, autocommit=True)
            try:
                with conn.cursor() as cur:
                    sync_slots.drop_slot(cur, self.journal, creation.slot_name)
                    sync_slots.drop_publication(cur, self.journal, creation.publication)
            finally:
                conn.close()
            self.say("dropped publication and replication slot %s of %s: the copy did not start"
                     % (quote_ident(creation.slot_name), quote_ident(database)))
        self.created = {}

    def close(self):
        for creation in self.created.values():
            creation.close()
