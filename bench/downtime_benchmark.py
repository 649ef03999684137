"""The application's downtime during consolidate.yml (offline mode), by backup timing; the hook for online mode.

Usage (from the repository root; ``make collections`` links this checkout under .ansible/collections)::

    PYTHONPATH=.ansible/collections:tools .venv/bin/python bench/downtime_benchmark.py
        [--scales 10,30] [--timings after_start,before_copy] [--repeat 1]
        [--root /var/tmp/classifiedads-downtime-bench] [--mode offline|online] [--rate 200] [--sync-seconds 20]
        [--json FILE] [--destroy]

Two embedded PostgreSQL clusters (devkit.pgembed): ``source`` holds the six legacy ClassifiedAds databases at each
``--scale`` (devkit.legacy; scale 10 is about 1 GB, 30 about 3 GB; built once per scale), ``target`` receives the
consolidated database. The application is the stand-in WebAPI (tools/standin_app), driven by consolidate.yml's
``app_control_mode: command`` (stop, start, status), its ``appsettings.json`` cut over by the cutover role, its
``/health`` awaited by app_control. A poller asks the stand-in every 0.1 s for ``/health`` and ``/api/whereami``.

Per run (a new run id, an empty target, the legacy databases unfenced and the application back on them first):

* downtime: from the moment the stop command was called to the first healthy answer of the application on the
  consolidated database (whereami's layout ``consolidated``): what a user of the application waits through;
* copy: the data_copy task, the other phases (fence, backup, verify) likewise, from ansible.posix.profile_tasks;
* ratio downtime/copy, and the issue's target for offline mode: downtime <= 1.2 x copy + 10 s.

``--mode online`` (issue 11, item 5; see :func:`run_online`): the application's writes (devkit.writer_load at
``--rate`` transactions/s, stopped when the play stops the application) run through sync.yml and ``--sync-seconds``
of streaming, during which sync_status's lag is sampled every second; then cutover.yml. The downtime is from the
fence to the first healthy answer on the consolidated database (the stop -> healthy time is printed too), the
target 10 s; every write the load saw committed must be in the consolidated database (WriterLoad.check), else the
run fails.

Not a test: timings on a shared machine are noisy; quote the best of a few repeats and the machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from devkit import ddl, legacy
from devkit.legacy import query
from devkit.pgembed import EmbeddedCluster
from devkit.writer_load import WriterLoad
from psycopg2 import sql
from standin_app import harness

from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import read_process
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import is_ours

REPO = Path(__file__).resolve().parent.parent
MIGRATOR = REPO / "tools" / "bin" / "classifiedads-migrator"
INVENTORY = REPO / "inventories" / "local"
TARGET_DATABASE = "ClassifiedAds"
MB = 1024 * 1024
POLL_INTERVAL = 0.1
# The stand-in reads the Product and AuditLog stores; the cutover edits only its settings file.
APP_MODULES = ("Product", "AuditLog")
APP_SETTINGS = "appsettings.json"
# Tasks whose duration is a phase of the window (profile_tasks' banner names, without the role prefix).
PHASE_TASKS = {
    "fence": "Make the legacy databases refuse writes and end the sessions that could still",
    "backup": "Back up the legacy databases into set",
    "copy": "Copy the legacy tables into",
    "verify": "Compare the legacy tables with their copies in",
}
# profile_tasks prints, under each task banner, the wall clock and the play's elapsed time at the task's start.
_PROFILED = re.compile(r"^TASK \[(?P<name>.*?)\] \*+\n.*?\(\d+:\d\d:\d\d\.\d+\)\s+(?P<elapsed>\d+):(?P<m>\d\d):"
                       r"(?P<s>\d\d\.\d+)", re.MULTILINE)
_RECAP_ELAPSED = re.compile(r"^TASKS RECAP \*+\n.*?\(\d+:\d\d:\d\d\.\d+\)\s+(\d+):(\d\d):(\d\d\.\d+)", re.MULTILINE)

# app_control_mode command's stop/start/status: the stand-in as a detached process with a pid file, every stop and
# start call stamped (time.time()) in events.json lines, so that the downtime starts when the play stopped it.
APP_CONTROL = '''import json, os, signal, subprocess, sys, time
action, home, settings, port, tools = sys.argv[1:6]
pidfile = os.path.join(home, "app.pid")
def pid():
    try:
        found = int(open(pidfile).read())
        os.kill(found, 0)
        return found
    except (OSError, ValueError):
        return None
if action == "status":
    sys.exit(0 if pid() else 3)
with open(os.path.join(home, "events.json"), "a") as events:
    events.write(json.dumps({"action": action, "at": time.time()}) + "\\n")
if action == "stop":
    running = pid()
    if running:
        os.kill(running, signal.SIGTERM)
        while pid():
            time.sleep(0.02)
    sys.exit(0)
if pid() is None:
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    with open(os.path.join(home, "app.log"), "ab") as log:
        subprocess.Popen([sys.executable, "-m", "standin_app", "--appsettings", settings, "--port", port,
                          "--pidfile", pidfile], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": tools}, start_new_session=True)
    deadline = time.time() + 30
    while not os.path.exists(pidfile):
        if time.time() > deadline:
            sys.exit("the stand-in did not write its pid file within 30 s")
        time.sleep(0.02)
'''


# -- the application --------------------------------------------------------------------------------------------

class Application:
    """The stand-in WebAPI under app_control's command mode, and a poller of its health and layout."""

    def __init__(self, home: Path, source_info):
        self.home = home
        self.port = harness.free_port()
        self.config_dir = home / "app"
        self.script = home / "app_control.py"
        self.source_info = source_info
        self.answers: list[tuple[float, bool, str | None]] = []  # (time, healthy, layout)
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    def reset(self) -> None:
        """Stopped, on the legacy databases, no events: the state before a consolidation."""
        self.control("stop")
        shutil.rmtree(self.home, ignore_errors=True)
        self.config_dir.mkdir(parents=True, mode=0o700)
        self.script.write_text(APP_CONTROL)
        info = self.source_info
        harness.write_appsettings(self.config_dir / APP_SETTINGS, modules={
            module: harness.connection_string(info.host, info.port, f"ClassifiedAds_{module}", info.user,
                                              passfile=info.passfile) for module in APP_MODULES})

    def argv(self, action: str) -> list[str]:
        return [sys.executable, str(self.script), action, str(self.home), str(self.config_dir / APP_SETTINGS),
                str(self.port), str(harness.TOOLS_DIR)]

    def control(self, action: str) -> None:
        if self.script.exists():
            subprocess.run(self.argv(action), check=action != "status", stdout=subprocess.DEVNULL)

    def ansible_vars(self) -> dict:
        return {
            "app_control_mode": "command",
            "app_control_stop_command": self.argv("stop"),
            "app_control_start_command": self.argv("start"),
            "app_control_status_command": self.argv("status"),
            "app_control_health_checks": [{"url": f"http://127.0.0.1:{self.port}/health", "timeout": 2}],
            "app_control_health_interval": 1,
            "cutover_app_dir": str(self.config_dir),
            "cutover_files": [{"path": APP_SETTINGS, "format": "json",
                               "connection_string_keys": ["ConnectionStrings:Default"],
                               "remove": [f"Modules:{module}:ConnectionStrings:Default" for module in APP_MODULES]}],
        }

    def start_polling(self) -> None:
        self._stop_polling.clear()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def stop_polling(self) -> None:
        self._stop_polling.set()
        if self._poller:
            self._poller.join()

    def _poll(self) -> None:
        base = f"http://127.0.0.1:{self.port}"
        while not self._stop_polling.wait(POLL_INTERVAL):
            asked = time.time()
            try:
                status, _body = harness.request(base + "/health", timeout=1)
                layout = harness.request(base + "/api/whereami", timeout=1)[1].get("layout") if status == 200 else None
            except OSError:
                status, layout = None, None
            self.answers.append((asked, status == 200, layout))

    def events(self) -> list[dict]:
        path = self.home / "events.json"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def downtime(self) -> tuple[float, float]:
        """(stop called, first healthy answer on the consolidated database), in time.time() seconds."""
        stopped = next(event["at"] for event in self.events() if event["action"] == "stop")
        healthy = next(at for at, ok, layout in self.answers if at > stopped and ok and layout == "consolidated")
        return stopped, healthy


# -- one consolidation --------------------------------------------------------------------------------------------

def shipped_modules() -> list:
    defaults = yaml.safe_load((REPO / "roles" / "consolidation" / "defaults" / "main.yml").read_text())
    return defaults["consolidation_modules"]


def endpoint(info) -> dict:
    return {"host": info.host, "port": info.port, "user": info.user, "passfile": info.passfile, "sslmode": "disable"}


def stop_appliers(work: Path) -> None:
    """SIGTERM to every applier an earlier run left (a run that failed between sync.yml and cutover.yml), each
    checked against its pid file's start time so that a reused pid is left alone."""
    for pidfile in work.glob("runs/*/sync/*.pid"):
        recorded = json.loads(pidfile.read_text())
        found = read_process(recorded["pid"])
        if found is not None and found[1] == recorded.get("start_time"):
            os.kill(recorded["pid"], signal.SIGTERM)


def fresh_state(source_info, target_info, work: Path, app: Application) -> None:
    """No consolidated database, no fence, no runs or backups, the application running on the legacy databases."""
    stop_appliers(work)
    query(target_info, "postgres", sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(TARGET_DATABASE)))
    for module in ddl.MODULES:
        query(source_info, "postgres", sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
            sql.Identifier(module.legacy_database())))
    for name in ("runs", "backups"):
        shutil.rmtree(work / name, ignore_errors=True)
    app.reset()
    app.control("start")


def play(playbook: str, variables: dict, work: Path, log_name: str) -> tuple[str, int]:
    """ansible-playbook classifiedads.consolidation.<playbook>, profiled; (its output, exit status)."""
    vars_file = work / "vars.json"
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(variables, handle)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".ansible" / "collections"),
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
    completed = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                                "-e", f"@{vars_file}", f"classifiedads.consolidation.{playbook}"],
                               capture_output=True, text=True, env=env, cwd=str(REPO), check=False)
    output = completed.stdout + completed.stderr
    (work / log_name).write_text(output)
    return output, completed.returncode


def phase_seconds(output: str) -> dict:
    """{phase: seconds} of PHASE_TASKS, and "play": the whole play, from profile_tasks' elapsed times."""
    marks = [(found["name"], int(found["elapsed"]) * 3600 + int(found["m"]) * 60 + float(found["s"]))
             for found in _PROFILED.finditer(output)]
    recap = _RECAP_ELAPSED.search(output)
    end = int(recap[1]) * 3600 + int(recap[2]) * 60 + float(recap[3])
    marks.append(("TASKS RECAP", end))
    phases = {"play": end}
    for (name, started), (_next, ended) in zip(marks, marks[1:], strict=False):
        for phase, task in PHASE_TASKS.items():
            if name.split(" : ", 1)[-1].startswith(task):
                phases[phase] = phases.get(phase, 0.0) + ended - started
    return phases


def run_variables(source_info, target_info, work: Path, app: Application, run_id: str, **extra) -> dict:
    """The extra vars of one benchmark run, either mode: the shipped mapping, its run id, the stand-in application."""
    return {
        "consolidation_source": endpoint(source_info),
        "consolidation_target": endpoint(target_info),
        "consolidation_modules": shipped_modules(),
        "consolidation_target_database": TARGET_DATABASE,
        "consolidation_run_root": str(work / "runs"),
        "consolidation_backup_root": str(work / "backups"),
        "consolidation_run_id": run_id,
        # The poller is the smoke test here: it sees the application answer on the consolidated database.
        "consolidation_smoke": False,
        "migrator_command": [sys.executable, str(MIGRATOR)],
        **app.ansible_vars(),
        **extra,
    }


def run_offline(source_info, target_info, work: Path, app: Application, scale: float, timing: str,
                attempt: int) -> dict:
    fresh_state(source_info, target_info, work, app)
    variables = run_variables(source_info, target_info, work, app,
                              f"bench-{scale:g}-{timing}-{attempt}".replace(".", "_"),
                              consolidation_backup_timing=timing)
    app.start_polling()
    try:
        output, rc = play("consolidate", variables, work, f"consolidate-{scale:g}-{timing}-{attempt}.log")
    finally:
        app.stop_polling()
        app.control("stop")
    if rc != 0:
        raise SystemExit(f"consolidate.yml failed (exit {rc}); its output: {work}/consolidate-*.log\n{output[-3000:]}")
    stopped, healthy = app.downtime()
    phases = phase_seconds(output)
    downtime = healthy - stopped
    return {"scale": scale, "timing": timing, "attempt": attempt, "downtime": downtime, **phases,
            "ratio": downtime / phases["copy"], "target": 1.2 * phases["copy"] + 10,
            "met": downtime <= 1.2 * phases["copy"] + 10}


# -- online mode ------------------------------------------------------------------------------------------------------

SLOT_PREFIX = "downtimebench"


class ApplicationWriter:
    """The application's writes (devkit.writer_load) for as long as the application runs: they stop when the play
    calls the stop command, as a stopped application's do, so that the fence finds no session of it left."""

    def __init__(self, app: Application, source_info, rate: float):
        self.app = app
        self.load = WriterLoad(source_info, rate=rate)
        self._watch = threading.Thread(target=self._stop_with_the_application, daemon=True)
        self._given_up = threading.Event()
        self.stats = None

    def start(self) -> ApplicationWriter:
        self.load.start()
        self._watch.start()
        return self

    def _stop_with_the_application(self) -> None:
        while not any(event["action"] == "stop" for event in self.app.events()):
            if self._given_up.wait(0.02):
                return
        self.stats = self.load.stop()

    def stop(self):
        """The load's totals (it stops now if the application never did: a play that failed before its stop)."""
        self._given_up.set()
        self._watch.join()
        if self.stats is None:
            self.stats = self.load.stop()
        return self.stats


def sync_status(source_info, target_info, work: Path, run_id: str) -> list[dict]:
    """The sync_status module's ``databases`` (lag bytes and seconds per legacy database), run as Ansible runs it."""
    args = work / "sync_status.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "source": endpoint(source_info), "target": endpoint(target_info), "target_database": TARGET_DATABASE,
        "run_id": run_id, "run_dir": str(work / "runs" / run_id), "modules": shipped_modules(),
        "slot_prefix": SLOT_PREFIX, "_ansible_remote_tmp": str(work)}}))
    completed = subprocess.run(
        [sys.executable, "-m", "ansible_collections.classifiedads.consolidation.plugins.modules.sync_status",
         str(args)], capture_output=True, text=True, cwd=str(work), check=False,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(os.path.abspath(path) for path in sys.path if path)))
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise SystemExit(f"sync_status printed no JSON (exit {completed.returncode}): {completed.stderr[-2000:]}") \
            from None
    if result.get("failed"):
        raise SystemExit(f"sync_status failed: {result.get('msg')}")
    return result["databases"]


def fenced_at(work: Path, run_id: str) -> float:
    """When the cutover's fence took hold (its record's earliest fenced_at), in time.time() seconds."""
    record = json.loads((work / "runs" / run_id / "fence.json").read_text())
    moments = [datetime.datetime.strptime(entry["fenced_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)
               for entry in record["databases"] if entry.get("fenced_at")]
    return min(moments).timestamp()


def drop_slots_of_ours(source_info) -> None:
    """A run that failed keeps its slots (they retain WAL): the next run starts without them."""
    for (name,) in query(source_info, "postgres", "SELECT slot_name FROM pg_replication_slots WHERE NOT active"):
        if is_ours(name, SLOT_PREFIX):
            query(source_info, "postgres", "SELECT pg_drop_replication_slot(%s)", (name,))


def run_online(source_info, target_info, work: Path, app: Application, scale: float, rate: float, attempt: int,
               sync_seconds: float) -> dict:
    """Online mode (issue 11, item 5): sync.yml while the application and its writer load run, the lag sampled
    from sync_status for ``sync_seconds``, then cutover.yml; the downtime from the fence (and from the stop) to the
    application healthy on the consolidated database; every write the load saw committed proven present."""
    fresh_state(source_info, target_info, work, app)
    drop_slots_of_ours(source_info)
    run_id = f"bench-{scale:g}-online-{attempt}".replace(".", "_")
    variables = run_variables(source_info, target_info, work, app, run_id, consolidation_sync="online",
                              consolidation_sync_slot_prefix=SLOT_PREFIX)
    writer = ApplicationWriter(app, source_info, rate).start()
    app.start_polling()
    lags = []
    try:
        output, rc = play("sync", variables, work, f"sync-{scale:g}-{attempt}.log")
        if rc != 0:
            raise SystemExit(f"sync.yml failed (exit {rc}); its output: {work}/sync-*.log\n{output[-3000:]}")
        sync_phases = phase_seconds(output)
        deadline = time.monotonic() + sync_seconds
        while time.monotonic() < deadline:
            lags.append(sync_status(source_info, target_info, work, run_id))
            time.sleep(1)
        output, rc = play("cutover", variables, work, f"cutover-{scale:g}-{attempt}.log")
        if rc != 0:
            raise SystemExit(f"cutover.yml failed (exit {rc}); its output: {work}/cutover-*.log\n{output[-3000:]}")
    finally:
        app.stop_polling()
        stats = writer.stop()
        app.control("stop")
    cutover_phases = phase_seconds(output)
    stopped, healthy = app.downtime()
    fence = fenced_at(work, run_id)
    proof = writer.load.check(target_info, TARGET_DATABASE)
    if not proof.ok:
        raise SystemExit(f"online run {run_id} lost or changed writes: {proof.summary()}")
    samples = [database for sample in lags for database in sample]
    return {"scale": scale, "timing": "online", "attempt": attempt, "downtime": healthy - fence,
            "stop_to_healthy": healthy - stopped, "copy": sync_phases["copy"], "sync_play": sync_phases["play"],
            "verify": cutover_phases.get("verify", 0.0), "fence": cutover_phases.get("fence", 0.0),
            "play": cutover_phases["play"], "ratio": (healthy - fence) / sync_phases["copy"], "target": 10.0,
            "met": healthy - fence <= 10.0,
            "lag_bytes_max": max((entry["lag_bytes"] or 0 for entry in samples), default=None),
            "lag_seconds_max": max((entry["lag_seconds"] or 0 for entry in samples), default=None),
            "writes": {"committed": stats.committed, "rate": round(stats.rate(), 1), "inserts": stats.inserts,
                       "updates": stats.updates, "deletes": stats.deletes, "refused": stats.refused,
                       "uncertain": stats.uncertain},
            "proof": proof.summary()}


# -- the machine, the table ------------------------------------------------------------------------------------------

def machine(source_info) -> dict:
    with open("/proc/meminfo") as handle:
        memory = int(handle.readline().split()[1]) * 1024
    return {"cpus": os.cpu_count(), "memory_gb": round(memory / 1024 ** 3, 1), "kernel": platform.release(),
            "postgresql": query(source_info, "postgres", "SHOW server_version")[0][0],
            "load_average": os.getloadavg()}


def legacy_size(source_info) -> int:
    return sum(query(source_info, "postgres", "SELECT pg_database_size(%s)", (module.legacy_database(),))[0][0]
               for module in ddl.MODULES)


def print_row(run: dict, size: int) -> None:
    if run["timing"] == "online":
        print(f"  {run['scale']:>5g} {size / MB:7.0f} MB  online       downtime {run['downtime']:6.1f} s (fence -> "
              f"healthy; stop -> healthy {run['stop_to_healthy']:.1f} s)  copy {run['copy']:5.1f} s  target 10 s "
              f"({'met' if run['met'] else 'MISSED'})  lag max {run['lag_bytes_max']} bytes, "
              f"{run['lag_seconds_max']} s  verify {run['verify']:4.1f}  sync play {run['sync_play']:6.1f} s  "
              f"cutover play {run['play']:6.1f} s  writes {run['writes']}  {run['proof']}", flush=True)
        return
    print(f"  {run['scale']:>5g} {size / MB:7.0f} MB  {run['timing']:<11}  downtime {run['downtime']:6.1f} s  "
          f"copy {run['copy']:5.1f} s  ratio {run['ratio']:4.2f}  target {run['target']:5.1f} s "
          f"({'met' if run['met'] else 'MISSED'})  fence {run.get('fence', 0):4.1f}  verify {run.get('verify', 0):4.1f}"
          f"  backup {run.get('backup', 0):5.1f}  play {run['play']:6.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="10", help="comma-separated devkit.legacy scales (10 is about 1 GB)")
    parser.add_argument("--timings", default="after_start,before_copy", help="consolidation_backup_timing values")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--mode", choices=["offline", "online", "both"], default="offline",
                        help="both: per scale and attempt, the offline timings then online, on the same data")
    parser.add_argument("--rate", type=float, default=200.0, help="online mode: the writer load's transactions/s")
    parser.add_argument("--sync-seconds", type=float, default=20.0,
                        help="online mode: how long the appliers stream (lag sampled) between sync.yml and cutover.yml")
    parser.add_argument("--root", default="/var/tmp/classifiedads-downtime-bench", help="where the clusters live")
    parser.add_argument("--destroy", action="store_true", help="destroy both clusters at the end")
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args(argv)
    scales = [float(scale) for scale in options.scales.split(",") if scale.strip()]
    timings = [timing.strip() for timing in options.timings.split(",") if timing.strip()]

    clusters = [EmbeddedCluster(name, options.root) for name in ("source", "target")]
    source_info, target_info = (cluster.start() for cluster in clusters)
    work = Path(options.root) / "work"
    work.mkdir(mode=0o700, exist_ok=True)
    app = Application(work / "application", source_info)
    figures = {"machine": machine(source_info), "runs": []}
    about = figures["machine"]
    print("machine: {cpus} CPUs, {memory_gb} GB RAM, Linux {kernel}, PostgreSQL {postgresql}, load average at "
          "start {load_average[0]:.2f}".format(**about), flush=True)
    try:
        for scale in scales:
            print(f"legacy databases at scale {scale:g}:", flush=True)
            try:
                legacy.create(source_info, scale, drop_existing=True, out=lambda line: print("  " + line, flush=True))
            except legacy.LegacyError as exc:
                raise SystemExit(f"{exc} (or pick another --root)") from None
            size = legacy_size(source_info)
            for attempt in range(1, options.repeat + 1):
                for timing in timings if options.mode != "online" else []:
                    run = dict(run_offline(source_info, target_info, work, app, scale, timing, attempt),
                               size_bytes=size)
                    figures["runs"].append(run)
                    print_row(run, size)
                if options.mode != "offline":
                    run = dict(run_online(source_info, target_info, work, app, scale, options.rate, attempt,
                                          options.sync_seconds), size_bytes=size)
                    figures["runs"].append(run)
                    print_row(run, size)
        best = {}
        for run in figures["runs"]:
            key = (run["scale"], run["timing"])
            if key not in best or run["downtime"] < best[key]["downtime"]:
                best[key] = run
        print("\nbest of each (scale, timing):")
        for run in best.values():
            print_row(run, run["size_bytes"])
        if options.json:
            Path(options.json).write_text(json.dumps(figures, indent=2))
    finally:
        app.control("stop")
        stop_appliers(work)
        for cluster in clusters:  # the data stays for a rerun (it is seeded again anyway) unless --destroy
            cluster.destroy() if options.destroy else cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
