"""Pure decisions of the embedded-cluster harness that need no server."""

from __future__ import annotations

import pytest
from devkit import pgembed


def test_missing_server_binaries_say_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    monkeypatch.setattr(pgembed.glob, "glob", lambda pattern: [])
    with pytest.raises(pgembed.ClusterError, match="apt-get install postgresql"):
        pgembed.find_bin_dir(install=False)


def test_newest_server_version_wins(monkeypatch, tmp_path):
    for version in ("9.6", "15", "13"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for program in ("initdb", "pg_ctl"):
            (bindir / program).write_text("#!/bin/sh\n")
            (bindir / program).chmod(0o755)
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setattr(pgembed.glob, "glob", lambda pattern: [str(p) for p in tmp_path.glob("*/bin")])
    assert pgembed.find_bin_dir(install=False) == str(tmp_path / "15" / "bin")


@pytest.mark.parametrize("name", ["", "a b", "x;rm", "../up"])
def test_cluster_names_are_plain(name):
    with pytest.raises(pgembed.ClusterError):
        pgembed.EmbeddedCluster(name)
