"""libpq's password-file rules as module_utils.pgpass reads them (pure functions)."""

from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgpass import find_password, split_line


def test_escaped_colons_and_backslashes_belong_to_the_field():
    assert split_line("db\\:1:5432:*:ops:pa\\:ss\\\\word\n") == ["db:1", "5432", "*", "ops", "pa:ss\\word"]


def test_an_unescaped_colon_in_the_password_field_is_part_of_the_password():
    assert split_line("h:5432:*:u:a:b") == ["h", "5432", "*", "u", "a:b"]


def test_comments_blank_and_short_lines_are_skipped():
    assert split_line("# h:1:*:u:p") is None
    assert split_line("   \n") is None
    assert split_line("h:5432:u:p") is None


def test_the_first_matching_line_wins_and_stars_match_anything():
    text = "other:5432:*:ops:no\n*:5432:*:ops:first\nh:5432:*:ops:second\n"
    assert find_password(text, "h", 5432, "ops") == "first"


def test_port_user_and_host_must_match():
    text = "h:5433:*:ops:p\nh:5432:*:dba:p\nx:5432:*:ops:p\n"
    assert find_password(text, "h", 5432, "ops") is None


def test_a_line_for_one_database_does_not_serve_a_run_that_opens_many():
    assert find_password("h:5432:ClassifiedAds:ops:p\n", "h", 5432, "ops") is None
    assert find_password("h:5432:*:ops:p\n", "h", 5432, "ops") == "p"


def test_an_empty_password_is_a_match_not_a_miss():
    assert find_password("*:*:*:*:\n", "h", 5432, "ops") == ""
