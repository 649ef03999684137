"""What every scenario's testinfra checks share: the instance's run directories and its PostgreSQL.

pytest loads this file for the tests of each scenario (molecule/<scenario>/tests/) since it sits in a
parent directory of theirs. Everything is read inside the container (``host`` is the Molecule instance).
"""

from __future__ import annotations

import os

import pytest
from instance_facts import RUN_ROOT


@pytest.fixture
def state_dir():
    """The scenario's state directory (its server's port and pgpass), mounted at this path in the instance."""
    return f"/var/tmp/classifiedads-molecule/{os.environ['MOLECULE_SCENARIO_NAME']}"


@pytest.fixture
def psql(host, state_dir):
    """``psql(database, query)``: the rows' values, run by the image's psql inside the instance."""

    def run(database, query):
        port = host.file(f"{state_dir}/port").content_string.strip()
        command = host.run("PGPASSFILE=%s psql -X -h 127.0.0.1 -p %s -U postgres -d %s -Atc %s",
                           f"{state_dir}/pgpass", port, database, query)
        assert command.rc == 0, command.stderr
        return command.stdout.split()

    return run


@pytest.fixture
def run_dir(host):
    """The directory of the latest consolidation run on the instance."""
    latest = host.file(f"{RUN_ROOT}/latest").content_string.strip()
    return f"{RUN_ROOT}/{latest}"
