"""Modules that cannot see ansible-playbook among their ancestors, as on a remote host (docker, ssh, AWX's
``consolidation_controller``): the run still holds its own lease from start to end, and a second run is refused.

The modules run through an interpreter wrapper that starts the real one in a new session as the grandchild
of a process that has exited, so its chain of parents ends at init without ever passing ansible-playbook,
as a module's chain ends at the container's or the ssh daemon's processes on a managed host.
"""

from __future__ import annotations

import json
import socket
import sys

from conftest import run_sql

from reliability.harness import wait_for
from reliability.test_two_runs import lease_of

WRAPPER = '''#!{python}
import os, subprocess, sys
status_r, status_w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # reparented once its parent exits: no ansible-playbook above it any more
        os.close(status_r)
        rc = subprocess.call([sys.executable] + sys.argv[1:], close_fds=True)
        os.write(status_w, bytes([rc & 255]))
        os._exit(0)
    os._exit(0)
os.close(status_w)
os.wait()
status = os.read(status_r, 1)
sys.exit(status[0] if status else 1)
'''


def test_a_run_whose_modules_cannot_see_ansible_playbook_holds_its_lease_to_the_end(
        consolidation, target_cluster, tmp_path):
    wrapper = tmp_path / "detached-python"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    first_id, second_id = "remote-first-run", "remote-second-run"
    gate = tmp_path / "migrator-gate"
    held = [*"/bin/sh -c".split(), 'while [ ! -e "$0" ]; do sleep 0.1; done; exec "$@"', str(gate)]
    run = consolidation("Remote", modules=["Product"], consolidation_run_id=first_id,
                        ansible_python_interpreter=str(wrapper))
    first = run.start(migrator_command=held + run.vars["migrator_command"])
    try:
        holder = wait_for(lambda: first.poll() is not None or lease_of(target_cluster, run.target_database),
                          timeout=300, what="the first run's lease on its target")
        assert first.poll() is None, (run.root / "started.out").read_text()[-4000:]
        # The holder is the ansible-playbook process, not the module's short-lived parent.
        assert holder == [(first_id, socket.gethostname(), first.pid)]

        second = run.play(consolidation_run_id=second_id, expect_rc=2)
        assert (f"run {first_id} on host {socket.gethostname()} (ansible-playbook pid {first.pid}, "
                in second.output), second.output[-4000:]
        assert "one run at a time per target database" in second.output
        assert lease_of(target_cluster, run.target_database) == holder
    finally:
        gate.touch()
        rc = first.wait(timeout=600)
    output = (run.root / "started.out").read_text()
    assert rc == 0, output[-4000:]
    assert "took over the lease" not in output and "not_held" not in output, output[-4000:]
    state = run.run_root / first_id / "state.json"
    assert state.stat().st_mode & 0o777 == 0o600 and json.loads(state.read_text())
    assert run_sql(target_cluster, run.target_database, "SELECT to_regnamespace('_consolidation')") == [(None,)]
