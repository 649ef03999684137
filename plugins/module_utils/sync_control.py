# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``sync_applier`` module does with the appliers of a run: start, stop, drain.

Draining is the cutover's step: with the legacy databases fenced, every slot must confirm the
source's current WAL position (each change applied), then the appliers stop and the target
sequences continue from their sources, as the copy left them at the end of the copy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_process
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_catalog import (
    COLUMN_SEQUENCE_STATE,
    STANDALONE_SEQUENCES,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import map_tables, sequence_setval
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    qualified,
    quote_ident,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgoutput import format_lsn, to_lsn
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import write_private_json
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sequences import forward_setval, next_value
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_apply import (
    FAILED,
    STARTING,
    Applier,
    partition_roots,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import (
    applier_files,
    drained_marker,
    publication_name,
    slot_name,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_state import applier_alive

STREAMING_WITHIN = 20.0  # seconds a started applier has to reach its slot before the module reports it as starting
POLL = 0.1

SLOT = """
SELECT s.confirmed_flush_lsn::text, (pg_catalog.pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint,
       pg_catalog.pg_current_wal_lsn()::text
FROM pg_catalog.pg_replication_slots s
WHERE s.slot_name = %s AND s.database = pg_catalog.current_database()
"""

SOURCE_TABLES = """
SELECT c.relname, c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
"""


class SyncControl(object):
    """The appliers of one run: one per legacy database of ``modules`` (normalised, plan.build_plan)."""

    def __init__(self, source, target, target_database, modules, run_id, run_dir, state_schema, prefix, journal,
                 check_mode):
        self.source = source
        self.target = target
        self.target_database = target_database
        self.modules = modules
        self.run_id = run_id
        self.run_dir = run_dir
        self.state_schema = state_schema
        self.prefix = prefix
        self.journal = journal
        self.check_mode = check_mode
        self.changed = False
        self.warnings = []
        self.sequences = []

    # -- one applier ----------------------------------------------------------------------------------------

    def _slot(self, module):
        return slot_name(self.run_id, module["source_database"], self.prefix)

    def _files(self, module):
        return applier_files(self.run_dir, module["source_database"])

    def _slot_state(self, module):
        """(confirmed_flush_lsn, lag bytes, current WAL position) of the module's slot; an error without one."""
        conn = connect(self.source, module["source_database"], autocommit=True)
        try:
            with conn.cursor() as cur:
                self.journal.execute(cur, SLOT, (self._slot(module),))
                row = cur.fetchone()
        finally:
            conn.close()
        if row is None:
            raise ConsolidationError(
                "the source has no replication slot %s for %s: the online copy creates it (data_copy with "
                "sync=online, run by sync.yml); run that first, or roll back" % (
                    quote_ident(self._slot(module)), module["source_database"]))
        return row

    def _entry(self, module, action, lag=None):
        files = self._files(module)
        record = sync_process.read_record(files)
        status = sync_process.read_status(files) or {}
        alive = applier_alive(record)
        return {"source_database": module["source_database"], "slot_name": self._slot(module), "action": action,
                "pid": int(record["pid"]) if alive else None, "state": status.get("state"),
                "error": status.get("error"), "applied_lsn": status.get("applied_lsn"), "lag": lag,
                "log": files["log"]}

    def _make_applier(self, module):
        def make(report, log):
            return Applier(self.source, self.target, self.target_database, module, self._slot(module),
                           publication_name(self.run_id, module["source_database"], self.prefix), self.state_schema,
                           report, log)
        return make

    def _start(self, module):
        files = self._files(module)
        if applier_alive(sync_process.read_record(files)):
            return "running"
        self.changed = True  # in check mode: the prediction
        if self.check_mode:
            return "would_start"
        sync_process.start(files, self.run_id, self._slot(module), self._make_applier(module))
        return "started"

    def _failure(self, module):
        """The error of an applier that stopped for good, or None."""
        status = sync_process.read_status(self._files(module)) or {}
        return status.get("error") if status.get("state") == FAILED else None

    def _wait_streaming(self, modules):
        """Wait until each started applier streams; one that failed at once fails the module with its error."""
        deadline = time.time() + STREAMING_WITHIN
        waiting = list(modules)
        while waiting and time.time() < deadline:
            for module in list(waiting):
                error = self._failure(module)
                if error:
                    raise ConsolidationError("the applier of %s stopped: %s (log: %s)"
                                             % (module["source_database"], error, self._files(module)["log"]))
                status = sync_process.read_status(self._files(module)) or {}
                if status.get("state") not in (None, STARTING) and status.get("slot_name") == self._slot(module):
                    waiting.remove(module)
            if waiting:
                time.sleep(POLL)
        for module in waiting:
            error = (sync_process.read_status(self._files(module)) or {}).get("error")
            self.warnings.append("the applier of %s has not reached its slot within %.0f s%s; it keeps trying: see %s"
                                 % (module["source_database"], STREAMING_WITHIN, " (%s)" % error if error else "",
                                    self._files(module)["log"]))

    def _result(self, entries):
        return {"changed": self.changed, "appliers": entries, "sequences": self.sequences, "warnings": self.warnings}

    # -- the states ---------------------------------------------------------------------------------------

    def started(self, **_options):
        """Every applier running; a dead one started again (it resumes after its last applied transaction)."""
        actions = []
        for module in self.modules:
            try:
                lag = self._slot_state(module)[1]
            except ConsolidationError as exc:
                if not self.check_mode:
                    raise
                # A check run of sync.yml: the copy before this step would create the slot, and in check mode did not.
                self.warnings.extend(exc.problems)
                lag = None
            actions.append((module, self._start(module), lag))
        self._wait_streaming([module for module, action, _lag in actions if action == "started"])
        return self._result([self._entry(module, action, lag) for module, action, lag in actions])

    def stopped(self, stop_timeout, **_options):
        entries, running = [], []
        for module in self.modules:
            files = self._files(module)
            if not applier_alive(sync_process.read_record(files)):
                entries.append(self._entry(module, "not_running"))
            elif self.check_mode:
                self.changed = True
                entries.append(self._entry(module, "would_stop"))
            else:
                running.append(files)
                self.changed = True
                entries.append(self._entry(module, "stopped"))
        sync_process.stop_all(running, stop_timeout)
        return self._result(entries)

    def drained(self, stop_timeout, catch_up_timeout, **_options):
        """Wait until every slot confirmed the source's WAL position of now, stop the appliers, continue sequences."""
        wanted = {}
        for module in self.modules:
            wanted[module["source_database"]] = to_lsn(self._slot_state(module)[2])
        if self.check_mode:
            self.changed = True
            return self._result([dict(self._entry(module, "would_drain", self._slot_state(module)[1]),
                                      target_lsn=format_lsn(wanted[module["source_database"]]))
                                 for module in self.modules])
        for module in self.modules:
            if self._failure(module):
                raise ConsolidationError("the applier of %s stopped: %s (log: %s)" % (
                    module["source_database"], self._failure(module), self._files(module)["log"]))
            self._start(module)  # one that ended (a rebooted controller) resumes and catches up
        self._catch_up(wanted, catch_up_timeout)
        entries = []
        sync_process.stop_all([self._files(module) for module in self.modules], stop_timeout)
        for module in self.modules:
            self.changed = True
            entries.append(dict(self._entry(module, "drained", self._slot_state(module)[1]),
                                target_lsn=format_lsn(wanted[module["source_database"]])))
        for module in self.modules:
            self._continue_sequences(module)
        write_private_json(drained_marker(self.run_dir), {
            "run_id": self.run_id, "drained_at": utc_timestamp(),
            "target_lsn": dict((entry["source_database"], entry["target_lsn"]) for entry in entries)})
        return self._result(entries)

    def _catch_up(self, wanted, timeout):
        deadline = time.time() + timeout
        behind = dict((module["source_database"], module) for module in self.modules)
        confirmed = {}
        while behind:
            for database, module in list(behind.items()):
                error = self._failure(module)
                if error:
                    raise ConsolidationError("the applier of %s stopped: %s (log: %s)"
                                             % (database, error, self._files(module)["log"]))
                confirmed[database] = to_lsn(self._slot_state(module)[0])
                if confirmed[database] >= wanted[database]:
                    del behind[database]
            if not behind:
                return
            if time.time() >= deadline:
                raise ConsolidationError([
                    "the applier of %s has not caught up within %d s: %d bytes behind (slot confirmed %s, the fenced "
                    "source is at %s); see %s, then rerun the cutover (or raise catch_up_timeout)"
                    % (database, timeout, wanted[database] - confirmed[database], format_lsn(confirmed[database]),
                       format_lsn(wanted[database]), self._files(module)["log"])
                    for database, module in sorted(behind.items())])
            time.sleep(POLL)

    # -- sequences ----------------------------------------------------------------------------------------

    def _continue_sequences(self, module):
        """Every target sequence of a mapped table, and every sequence no column uses, continues from its source.

        The application kept calling nextval() on the legacy databases during sync, so the copy's setval is
        out of date; like the copy, a sequence goes to its source state or past max(column), never back.
        """
        database = module["source_database"]
        source = connect(self.source, database, autocommit=True)
        target = connect(self.target, self.target_database)
        try:
            with source.cursor() as scur, target.cursor() as tcur:
                scur.execute(SOURCE_TABLES, (module["source_schema"],))
                source_oids = dict(scur.fetchall())
                mappings, _excluded = map_tables(module, list(source_oids), partition_roots(self.source, module))
                columns = self._source_column_sequences(scur, [source_oids[m.source_table] for m in mappings])
                for mapping in mappings:
                    tcur.execute("SELECT pg_catalog.to_regclass(%s)::oid",
                                 (sql.Identifier(mapping.target_schema, mapping.target_table).as_string(tcur),))
                    target_oid = tcur.fetchone()[0]
                    if target_oid is None:
                        continue
                    tcur.execute(COLUMN_SEQUENCE_STATE, ([target_oid],))
                    for _oid, column, seq_schema, seq_name, increment, _readable in tcur.fetchall():
                        state = columns.get((source_oids[mapping.source_table], column))
                        aggregate = "max" if increment > 0 else "min"
                        tcur.execute(sql.SQL("SELECT {}({}) FROM {}").format(
                            sql.SQL(aggregate), sql.Identifier(column),
                            sql.Identifier(mapping.target_schema, mapping.target_table)))
                        extreme = tcur.fetchone()[0]
                        setval = sequence_setval(state and state[1], state and state[2], increment, extreme)
                        self._setval(tcur, seq_schema, seq_name, increment, setval, {
                            "source_database": database, "target_table": qualified(mapping.target_schema,
                                                                                   mapping.target_table),
                            "column": column, "source_sequence": state and state[0]})
                scur.execute(STANDALONE_SEQUENCES, (module["source_schema"],))
                for name, increment, _readable in scur.fetchall():
                    scur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
                        sql.Identifier(module["source_schema"], name)))
                    last_value, is_called = scur.fetchone()
                    tcur.execute("SELECT pg_catalog.to_regclass(%s)",
                                 (sql.Identifier(module["schema"], name).as_string(tcur),))
                    if tcur.fetchone()[0] is None:
                        self.warnings.append("sequence %s (from %s) does not exist in the target: not continued"
                                             % (qualified(module["schema"], name), database))
                        continue
                    self._setval(tcur, module["schema"], name, increment, (last_value, is_called), {
                        "source_database": database, "target_table": None, "column": None,
                        "source_sequence": qualified(module["source_schema"], name)})
            target.commit()
        finally:
            source.close()
            target.close()

    @staticmethod
    def _source_column_sequences(cur, oids):
        """{(table oid, column): (sequence name, last_value, is_called)} of the source."""
        cur.execute(COLUMN_SEQUENCE_STATE, (oids,))
        found = {}
        for oid, column, schema, name, _increment, _readable in cur.fetchall():
            cur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, name)))
            found[(oid, column)] = (qualified(schema, name),) + tuple(cur.fetchone())
        return found

    def _setval(self, cur, schema, name, increment, setval, entry):
        cur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, name)))
        current = cur.fetchone()
        if setval is not None:
            setval = forward_setval(setval, current[0], current[1], increment)
        if setval is not None and next_value(current[0], current[1], increment) == next_value(
                setval[0], setval[1], increment):
            setval = None  # where it must be already: a rerun changes nothing
        if setval is not None:
            self.journal.change(cur, "SELECT pg_catalog.setval(%s, %s, %s)",
                                (sql.Identifier(schema, name).as_string(cur), setval[0], setval[1]))
            self.changed = True
        self.sequences.append(dict(entry, target_sequence=qualified(schema, name),
                                   setval=list(setval) if setval else None))
