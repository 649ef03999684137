"""The store of saved configuration originals (module_utils/config_store.py), on a real directory."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_store import (
    ConfigStore,
    ConfigStoreError,
    backup_name,
    sha256_hex,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import directory_lock

APP_FILE = "/srv/app/appsettings.json"


def save(store, data=b'{"A": 1}\n', path=APP_FILE, mode=0o640):
    info = os.stat_result((stat.S_IFREG | mode, 0, 0, 1, 1000, 1000, len(data), 0, 0, 0))
    return store.save(path, data, info, "json")


def test_the_first_save_keeps_the_original_privately_and_indexes_it(tmp_path):
    store = ConfigStore(str(tmp_path / "backups" / "t1"))
    entry, created = save(store)
    assert created
    assert store.directory == str(tmp_path / "backups" / "t1" / "config")
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    saved = store.saved_path(entry["name"])
    assert entry["name"] == backup_name(APP_FILE) and saved.startswith(store.directory + "/")
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert store.read_saved(entry) == b'{"A": 1}\n'
    assert stat.S_IMODE(os.stat(store.index_path).st_mode) == 0o600
    assert json.loads(open(store.index_path).read())["files"] == {entry["name"]: entry}
    assert (entry["path"], entry["format"], entry["sha256"], entry["size"], entry["mode"], entry["uid"]) == (
        APP_FILE, "json", sha256_hex(b'{"A": 1}\n'), 9, "0640", 1000)
    assert store.entry(APP_FILE) == entry


def test_an_original_once_saved_is_never_replaced(tmp_path):
    store = ConfigStore(str(tmp_path))
    first, _created = save(store, b"original")
    again, created = save(store, b"cut over already")
    assert not created and again == first
    assert store.read_saved(again) == b"original"


def test_nothing_saved_means_no_entry_and_no_directory(tmp_path):
    store = ConfigStore(str(tmp_path / "set"))
    assert store.entry(APP_FILE) is None
    assert store.index() == {"files": {}}
    assert not (tmp_path / "set").exists()


def test_a_leftover_of_an_interrupted_save_is_replaced(tmp_path):
    store = ConfigStore(str(tmp_path))
    os.makedirs(store.directory, 0o700)
    with open(store.saved_path(backup_name(APP_FILE)), "wb") as handle:
        handle.write(b"half written")
    entry, created = save(store, b"original")
    assert created and store.read_saved(entry) == b"original"


@pytest.mark.parametrize("content, message", [
    ("[]", "is not an index of saved originals"),
    ('{"files": []}', "is not an index of saved originals"),
    ("{", "is not valid JSON"),
])
def test_a_damaged_index_is_refused_by_name(tmp_path, content, message):
    store = ConfigStore(str(tmp_path))
    os.makedirs(store.directory, 0o700)
    with open(store.index_path, "w") as handle:
        handle.write(content)
    with pytest.raises(ConfigStoreError, match=message) as caught:
        store.entry(APP_FILE)
    assert store.index_path in str(caught.value)
    assert isinstance(caught.value, ConsolidationError)


def test_a_symlinked_store_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "config").symlink_to(elsewhere)
    with pytest.raises(ConfigStoreError, match="is not a directory \\(a symlink\\?\\)"):
        save(ConfigStore(str(tmp_path / "set")))
    assert list(elsewhere.iterdir()) == []


def test_a_loose_store_directory_is_made_private(tmp_path):
    store = ConfigStore(str(tmp_path))
    os.makedirs(store.directory)
    os.chmod(store.directory, 0o755)
    save(store)
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700


def test_a_save_waits_while_another_task_holds_the_store(tmp_path):
    store = ConfigStore(str(tmp_path))
    os.makedirs(store.directory, 0o700)
    held, release = threading.Event(), threading.Event()

    def other_task():
        with directory_lock(store.directory, RuntimeError):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=other_task)
    thread.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    _entry, created = save(store)
    thread.join()
    assert created and time.monotonic() - started >= 0.25
