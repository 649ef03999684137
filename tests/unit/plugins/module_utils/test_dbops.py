"""Operations on whole databases, their pure parts: names within 63 bytes, sessions and settings as the
catalog gives them."""

from __future__ import annotations

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import dbops

# -- database settings --------------------------------------------------------------------------


def test_list_settings_are_split_as_the_server_quotes_them():
    assert dbops.split_setting('search_path="$user", public, "We ird"') == ("search_path",
                                                                            ["$user", "public", "We ird"])
    assert dbops.split_guc_list('"a""b", c') == ['a"b', "c"]
    assert dbops.split_guc_list("") == []


def test_other_settings_keep_their_value_whole():
    assert dbops.split_setting("work_mem=64MB") == ("work_mem", ["64MB"])
    assert dbops.split_setting("app.note=a=b, c") == ("app.note", ["a=b, c"])


# -- names and sessions -------------------------------------------------------------------------


def test_a_suffix_is_kept_whole_and_the_name_shortened_to_63_bytes():
    assert dbops.suffixed_name(HOSTILE, "_x") == HOSTILE + "_x"
    name = dbops.suffixed_name("é" * 40, "_restoring")
    assert len(name.encode()) <= 63 and name.endswith("_restoring") and name.encode().decode() == name


def test_a_session_is_described_by_pid_user_application_client_and_state():
    session = {"pid": 4242, "user": "webapi", "application": "ClassifiedAds.WebAPI", "client_addr": None,
               "state": None}
    assert dbops.describe_session(session) == ("pid 4242, user webapi, application 'ClassifiedAds.WebAPI', "
                                               "client local, state unknown")
