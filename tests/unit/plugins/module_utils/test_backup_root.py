"""Whether a backup set can be written under backup_root, decided before anything is written."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils.backup import backup_root_problem


def test_an_existing_directory_or_one_that_can_be_created_is_usable(tmp_path):
    assert backup_root_problem(str(tmp_path)) is None
    assert backup_root_problem(str(tmp_path / "backups" / "classifiedads")) is None


def test_a_file_in_place_of_the_root_is_named(tmp_path):
    (tmp_path / "backups").write_text("not a directory")
    assert backup_root_problem(str(tmp_path / "backups")) == f"backup_root {tmp_path / 'backups'} is not a directory"


def test_a_file_on_the_way_to_the_root_is_named_as_the_reason_it_cannot_be_created(tmp_path):
    (tmp_path / "mnt").write_text("the volume is not mounted; a file was left here")
    root = tmp_path / "mnt" / "backups"
    expected = f"backup_root {root} cannot be created: {tmp_path / 'mnt'} is not a directory"
    assert backup_root_problem(str(root)) == expected
