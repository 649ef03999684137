"""devkit.docker_engine itself: one engine shared by its users, and what it says when it cannot work.

Each test gets its own state root (CLASSIFIEDADS_DOCKER_ROOT), so it never touches the engine other
tests or helpers share; a daemon started here runs on its own socket and is stopped by the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from devkit import docker_engine

needs_dockerd = pytest.mark.skipif(
    shutil.which("dockerd") is None and not os.environ.get("CLASSIFIEDADS_REQUIRE_DOCKER"),
    reason="dockerd is not installed (apt-get install docker.io); CLASSIFIEDADS_REQUIRE_DOCKER=1 makes it a failure")


@pytest.fixture
def engine_root(monkeypatch):
    # Below /var/tmp, short: the daemon's and containerd's sockets live in it (sun_path holds 108 bytes).
    root = Path(tempfile.mkdtemp(prefix="cad-dk-", dir="/var/tmp"))
    monkeypatch.setenv("CLASSIFIEDADS_DOCKER_ROOT", str(root))
    yield root
    docker_engine.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_without_dockerd_the_error_says_how_to_install_it(engine_root, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(docker_engine.EngineError, match=r"dockerd .* not installed: apt-get install docker\.io"):
        docker_engine.acquire()
    assert not docker_engine.answers()


@needs_dockerd
def test_a_daemon_that_cannot_start_is_reported_with_its_log(engine_root):
    (engine_root / "data").write_text("a file where the data root should be")
    with pytest.raises(docker_engine.EngineError, match=r"dockerd exited with status \d+; the end of its log") as exc:
        docker_engine.acquire()
    assert str(engine_root / "data") in str(exc.value)  # the daemon's own words name the data root


@needs_dockerd
def test_the_last_user_stops_the_daemon_it_started_and_a_started_one_stays(engine_root):
    _env, first = docker_engine.acquire()
    pid = docker_engine._state()["pid"]
    _env, second = docker_engine.acquire()
    assert docker_engine._state()["pid"] == pid  # one daemon for both
    docker_engine.release(first)
    assert docker_engine.answers()
    docker_engine.release(second)
    assert not docker_engine.answers() and not docker_engine._alive(pid)

    assert docker_engine.main(["start"]) == 0
    _env, user = docker_engine.acquire()
    docker_engine.release(user)
    assert docker_engine.answers()  # `start` means: stays until `stop`
    assert docker_engine.main(["stop"]) == 0
    assert not docker_engine.answers()


def test_a_registration_of_a_dead_process_does_not_keep_the_daemon(engine_root):
    users = engine_root / "users"
    users.mkdir()
    (users / "999999999-1").write_text("1")  # beyond pid_max: never alive
    (users / f"{os.getpid()}-2").write_text("1")  # this pid, but a process that started at boot: reused
    (users / f"{os.getpid()}-3").write_text(docker_engine._process_start(os.getpid()))
    assert docker_engine._users() == [users / f"{os.getpid()}-3"]
    assert sorted(path.name for path in users.iterdir()) == [f"{os.getpid()}-3"]


@pytest.mark.skipif(shutil.which("debootstrap") is None or os.geteuid() != 0,
                    reason="debootstrap (as root) is needed to build the base image")
def test_an_unreachable_debian_archive_is_named_in_the_error(engine_root, monkeypatch):
    mirror = "http://127.0.0.1:9/debian"  # discard port: nothing listens, the connection is refused
    monkeypatch.setenv("CLASSIFIEDADS_DEBIAN_MIRROR", mirror)
    with pytest.raises(docker_engine.EngineError) as exc:
        docker_engine._base_rootfs("test")
    message = str(exc.value)
    assert f"Debian archive {mirror}" in message and "network access" in message
    assert not list((engine_root / "rootfs").glob("*.tar"))
