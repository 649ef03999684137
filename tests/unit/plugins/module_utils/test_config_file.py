"""Cutting a configuration file over and putting it back (module_utils/config_file.py), and what the
dispatch (module_utils/app_config.py) asks of it: values to set, their secrets, the masked diff."""

from __future__ import annotations

import os
import stat

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.app_config import (
    masked_diff,
    requested_values,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_compose import services_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_file import (
    ConfigFile,
    ConfigFileError,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_store import ConfigStore
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import ConfigEditError

ORIGINAL = b'{\n  // the per-module string\n  "Modules": {"Product": {"ConnectionStrings": {"Default": "Host=a"}}}\n}\n'
REMOVE = ["Modules:Product:ConnectionStrings:Default"]
SHARED = {"ConnectionStrings:Default": "Host=db;Database=ClassifiedAds;Password=s3cret-pw"}


def atomic_move(src, dest, unsafe_writes=False, keep_dest_attrs=True):
    """AnsibleModule.atomic_move as far as these files need it: keep the mode of what is replaced."""
    if keep_dest_attrs and os.path.exists(dest):
        os.chmod(src, stat.S_IMODE(os.stat(dest).st_mode))
    os.replace(src, dest)


@pytest.fixture
def app_file(tmp_path):
    path = tmp_path / "app" / "appsettings.json"
    path.parent.mkdir()
    path.write_bytes(ORIGINAL)
    path.chmod(0o640)
    return path


def config(path, backup_dir=None, check_mode=False, diff=False, warnings=None, secrets=()):
    store = ConfigStore(str(backup_dir)) if backup_dir else None
    warn = (warnings if warnings is not None else []).append
    return ConfigFile(str(path), store, atomic_move, warn, check_mode, diff, secrets)


def cut_over(path, backup_dir=None, **options):
    return config(path, backup_dir, **options).cut_over("json", REMOVE, SHARED)


# ---------------------------------------------------------------- dispatch

def test_the_shared_connection_string_goes_under_each_key_and_its_password_is_a_secret():
    connection = {"host": "db", "port": 5432, "database": "ClassifiedAds", "user": "app", "password": HOSTILE}
    values, secrets = requested_values({"Logging:Level": "Warning"}, ["A", "B"], connection=connection)
    assert values["A"] == values["B"] and values["Logging:Level"] == "Warning"
    assert values["A"].startswith("Host=db;Port=5432;Database=ClassifiedAds;Username=app;Password=")
    assert secrets == {HOSTILE}


def test_a_given_connection_string_wins_and_passwords_in_set_values_are_secrets():
    values, secrets = requested_values({"Other": "Host=x;Pwd=other-pw"}, ["A"], connection_string="Host=y;Password=p1")
    assert values == {"Other": "Host=x;Pwd=other-pw", "A": "Host=y;Password=p1"}
    assert secrets == {"other-pw", "p1"}


def test_connection_string_keys_need_a_connection():
    with pytest.raises(ConfigEditError, match="^connection_string_keys needs connection or connection_string$"):
        requested_values({}, ["A"])
    assert requested_values({}, []) == ({}, set())


def test_plain_compose_keys_need_services():
    assert services_problem(["A", "web:B"], []) == (
        "format=compose needs services for A: the services whose environment is edited")
    assert services_problem(["web:B"], []) is None
    assert services_problem(["A"], ["web"]) is None


def test_the_diff_masks_given_secrets_and_those_the_files_hold():
    before = '{"ConnectionStrings": {"Default": "Host=a;Password=old-pw"}}'
    after = '{"ConnectionStrings": {"Default": "Host=a;Password=new-pw"}, "Note": "given-secret"}'
    diff = masked_diff("/x.json", before, after, {"given-secret"}, "json")
    assert diff["before_header"] == diff["after_header"] == "/x.json"
    assert "old-pw" not in diff["before"] and "new-pw" not in diff["after"] and "given-secret" not in diff["after"]
    assert "Password=********" in diff["after"]
    assert "********" in masked_diff("/x", "a", "Pwd=x1", set())["after"]  # unknown format: keywords still masked


# ---------------------------------------------------------------- cut over

def test_check_mode_reports_the_change_and_the_original_it_would_save_without_writing(app_file, tmp_path):
    changed, result = cut_over(app_file, tmp_path / "set", check_mode=True, diff=True)
    assert changed and result["removed"] == REMOVE and result["updated"] == ["ConnectionStrings:Default"]
    assert result["backup"]["created"] and result["backup"]["path"].startswith(str(tmp_path / "set" / "config"))
    assert "s3cret-pw" not in str(result["diff"]) and "Password=********" in result["diff"]["after"]
    assert app_file.read_bytes() == ORIGINAL and not (tmp_path / "set").exists()


def test_the_cut_over_saves_the_original_first_keeps_the_mode_and_then_changes_nothing(app_file, tmp_path):
    changed, result = cut_over(app_file, tmp_path / "set")
    assert changed and result["backup"]["created"]
    assert open(result["backup"]["path"], "rb").read() == ORIGINAL
    assert b"// the per-module string" in app_file.read_bytes() and b"Host=db" in app_file.read_bytes()
    assert stat.S_IMODE(app_file.stat().st_mode) == 0o640
    again, result = cut_over(app_file, tmp_path / "set")
    assert not again and not result["backup"]["created"] and result["removed"] == []


def test_without_a_backup_set_nothing_is_saved(app_file):
    changed, result = cut_over(app_file)
    assert changed and "backup" not in result


def test_a_missing_file_or_an_impossible_edit_is_named(tmp_path, app_file):
    with pytest.raises(ConfigFileError, match=f"^{tmp_path} does not exist or is not a regular file$"):
        config(tmp_path).cut_over("json", REMOVE, SHARED)
    app_file.write_text("{,}")
    with pytest.raises(ConfigEditError, match=f"^{app_file}: not valid JSON"):
        cut_over(app_file)


def test_no_change_without_a_sound_original(app_file, tmp_path):
    _changed, result = cut_over(app_file, tmp_path / "set")
    app_file.write_bytes(ORIGINAL)  # someone put the legacy file back by hand
    with open(result["backup"]["path"], "wb") as handle:
        handle.write(b"damaged")
    with pytest.raises(ConfigFileError, match="is missing or does not match the sha256") as caught:
        cut_over(app_file, tmp_path / "set")
    assert caught.value.details["path"] == str(app_file) and caught.value.details["removed"] == REMOVE
    assert app_file.read_bytes() == ORIGINAL


def test_warnings_when_restoring_would_fail_or_would_not_give_the_current_content(app_file, tmp_path):
    cut_over(app_file, tmp_path / "set")
    cut_over_text = app_file.read_bytes()
    warnings = []
    app_file.write_bytes(ORIGINAL.replace(b"Host=a", b"Host=b"))  # changed since the original was saved
    changed, result = cut_over(app_file, tmp_path / "set", warnings=warnings)
    saved = result["backup"]["path"]
    assert changed and warnings == [f"{app_file} changed since its original was saved in {saved}; restoring puts "
                                    "back that original, not its current content"]
    assert app_file.read_bytes() == cut_over_text
    os.unlink(saved)
    warnings.clear()
    assert cut_over(app_file, tmp_path / "set", warnings=warnings)[0] is False
    assert len(warnings) == 1 and "restoring this file would fail" in warnings[0]


# ---------------------------------------------------------------- put back

def test_the_original_comes_back_byte_for_byte_with_its_mode_then_nothing_is_left_to_do(app_file, tmp_path):
    cut_over(app_file, tmp_path / "set")
    app_file.chmod(0o600)
    changed, result = config(app_file, tmp_path / "set", check_mode=True, diff=True).put_back()
    assert changed and result["restored"] == "restore" and "s3cret-pw" not in str(result["diff"])
    assert app_file.read_bytes() != ORIGINAL
    changed, result = config(app_file, tmp_path / "set").put_back()
    assert changed and app_file.read_bytes() == ORIGINAL and stat.S_IMODE(app_file.stat().st_mode) == 0o640
    assert config(app_file, tmp_path / "set").put_back() == (False, dict(result, restored="none"))


def test_only_the_mode_is_reset_when_the_content_is_the_original(app_file, tmp_path):
    cut_over(app_file, tmp_path / "set")
    config(app_file, tmp_path / "set").put_back()
    app_file.chmod(0o644)
    changed, result = config(app_file, tmp_path / "set").put_back()
    assert changed and result["restored"] == "mode" and stat.S_IMODE(app_file.stat().st_mode) == 0o640


def test_nothing_to_put_back_when_no_original_was_saved(app_file, tmp_path):
    changed, result = config(app_file, tmp_path / "set").put_back()
    assert not changed and result["restored"] == "not saved"
    assert result["msg"] == f"no original of {app_file} was saved in {tmp_path / 'set' / 'config'}: nothing to restore"


def test_a_damaged_original_is_refused_and_the_file_left_alone(app_file, tmp_path):
    _changed, result = cut_over(app_file, tmp_path / "set")
    with open(result["backup"]["path"], "wb") as handle:
        handle.write(b"tampered")
    cut_over_text = app_file.read_bytes()
    with pytest.raises(ConfigFileError, match="does not match the sha256 recorded when it was saved") as caught:
        config(app_file, tmp_path / "set").put_back()
    assert caught.value.details["backup"]["path"] == result["backup"]["path"]
    assert app_file.read_bytes() == cut_over_text
