"""Pure configuration editing (module_utils/app_config.py and the config_*, npgsql and secrets_mask files it
dispatches to): case by case, on the real file shapes."""

from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path

import pytest
import yaml
from constants import MODULE_NAMES as MODULES
from devkit.migrator import parse_connection_string

from ansible_collections.classifiedads.consolidation.plugins.module_utils.app_config import document_secrets
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_compose import (
    compose_targets,
    edit_compose,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_dotenv import (
    dotenv_data,
    edit_dotenv,
    format_dotenv_value,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_json import edit_json, parse_json
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_store import (
    ConfigStoreError,
    backup_name,
    restore_action,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import (
    UTF8_BOM,
    ConfigEditError,
    decode_document,
    encode_document,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import (
    connection_string_pairs,
    shared_connection_string,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.secrets_mask import (
    connection_string_secrets,
    mask_text,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "classifiedads_app"
SETTINGS_KEYS = [f"Modules:{name}:ConnectionStrings:Default" for name in MODULES]
ENV_KEYS = [f"Modules__{name}__ConnectionStrings__Default" for name in MODULES]
HOSTILE_PASSWORD = 'a"; DROP TABLE x; --$HOME\\'
SHARED = shared_connection_string({"host": "127.0.0.1", "port": 5432, "database": "ClassifiedAds",
                                   "user": "postgres", "password": HOSTILE_PASSWORD})
LEGACY_PASSWORD = "legacy-Placeholder!@#"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def without_module_connection_strings(data: dict) -> dict:
    data = copy.deepcopy(data)
    for module in data.get("Modules", {}).values():
        module.pop("ConnectionStrings", None)
    return data


# ---------------------------------------------------------------- JSON

@pytest.mark.parametrize("project, modules", [
    ("ClassifiedAds.WebAPI", MODULES),
    ("ClassifiedAds.Migrator", MODULES),
    ("ClassifiedAds.Background", [name for name in MODULES if name != "Configuration"]),
])
def test_appsettings_cut_over_keeps_every_unrelated_key(project, modules):
    before = fixture(f"{project}/appsettings.json")
    result = edit_json(before, SETTINGS_KEYS, {"ConnectionStrings:Default": SHARED})
    old, new = json.loads(before), json.loads(result.text)
    assert new["ConnectionStrings"] == {"Default": SHARED}
    assert all("ConnectionStrings" not in module for module in new["Modules"].values())
    # Everything else: identical, in the same order.
    rest = dict(new)
    del rest["ConnectionStrings"]
    assert rest == without_module_connection_strings(old)
    assert list(rest) == list(old)
    assert result.removed == [f"Modules:{name}:ConnectionStrings:Default" for name in modules]
    assert result.updated == ["ConnectionStrings:Default"]
    # Line by line: only connection-string blocks and the module objects they leave empty change.
    for line in changed_lines(before, result.text):
        assert re.fullmatch(r'[+-] *("ConnectionStrings": \{|"Default": "Host=.*"|\},?|"\w+": \{(\},?)?)', line), line


def test_shared_block_goes_where_the_module_blocks_were_reached():
    result = edit_json(fixture("ClassifiedAds.Migrator/appsettings.json"), SETTINGS_KEYS,
                       {"ConnectionStrings:Default": "Host=x"})
    assert '  "AllowedHosts": "*",\n  "ConnectionStrings": {\n    "Default": "Host=x"\n  },\n  "Modules": {' \
        in result.text


def test_background_without_configuration_module():
    before = fixture("ClassifiedAds.Background/appsettings.json")
    assert "Configuration" not in json.loads(before)["Modules"]
    result = edit_json(before, SETTINGS_KEYS, {"ConnectionStrings:Default": SHARED})
    assert "Modules:Configuration:ConnectionStrings:Default" not in result.removed
    assert "Configuration" not in json.loads(result.text)["Modules"]


def test_already_cut_over_file_is_a_no_op():
    once = edit_json(fixture("ClassifiedAds.WebAPI/appsettings.json"), SETTINGS_KEYS,
                     {"ConnectionStrings:Default": SHARED}).text
    again = edit_json(once, SETTINGS_KEYS, {"ConnectionStrings:Default": SHARED})
    assert again.text == once
    assert again.removed == [] and again.updated == []


def test_changed_value_is_replaced_in_place():
    text = '{\n  "ConnectionStrings": {\n    "Default": "Host=old" // keep me\n  },\n  "Other": 1\n}\n'
    result = edit_json(text, [], {"ConnectionStrings:Default": "Host=new"})
    assert result.text == text.replace("Host=old", "Host=new")


def test_keys_are_matched_case_insensitively_like_dotnet():
    text = ('{\n  "modules": {\n    "product": {\n      "connectionStrings": {\n        "default": "x"\n      }\n'
            '    }\n  }\n}\n')
    result = edit_json(text, ["Modules:Product:ConnectionStrings:Default"], {})
    assert json.loads(result.text) == {"modules": {"product": {}}}


def test_comments_and_trailing_commas_survive():
    text = """{
  // Logging as in production
  "Logging": { "LogLevel": { "Default": "Warning", }, },
  /* module databases */
  "Modules": {
    "Product": {
      "ConnectionStrings": {
        "Default": "Host=a;Password=p1", // product DB
      },
      "Extra": true,
    },
  },
}
"""
    result = edit_json(text, ["Modules:Product:ConnectionStrings:Default"], {"ConnectionStrings:Default": "H"})
    assert "// Logging as in production" in result.text
    assert "/* module databases */" in result.text
    assert "// product DB" not in result.text  # a comment on the removed line goes with it
    assert '"Extra": true,\n' in result.text  # the file's trailing-comma style stays
    assert parse_json(result.text) == {"Logging": {"LogLevel": {"Default": "Warning"}}, "ConnectionStrings":
                                       {"Default": "H"}, "Modules": {"Product": {"Extra": True}}}


def test_last_member_removal_takes_the_comma_before_it():
    text = '{\n  "A": {\n    "Keep": 1,\n    "ConnectionStrings": {\n      "Default": "x"\n    }\n  }\n}\n'
    result = edit_json(text, ["A:ConnectionStrings:Default"], {})
    assert result.text == '{\n  "A": {\n    "Keep": 1\n  }\n}\n'


def test_prune_empty_off_keeps_an_empty_object():
    text = '{\n  "A": {\n    "ConnectionStrings": {\n      "Default": "x"\n    }\n  }\n}\n'
    result = edit_json(text, ["A:ConnectionStrings:Default"], {}, prune_empty=False)
    assert result.text == '{\n  "A": {\n    "ConnectionStrings": {}\n  }\n}\n'


def test_inline_objects():
    text = '{"Modules": {"Product": {"ConnectionStrings": {"Default": "x"}, "Provider": "Local"}}, "B": [1, 2]}'
    result = edit_json(text, ["Modules:Product:ConnectionStrings:Default"], {"ConnectionStrings:Default": "y"})
    assert result.text == '{"ConnectionStrings": {"Default": "y"}, "Modules": {"Product": {"Provider": "Local"}}, ' \
                          '"B": [1, 2]}'


def test_crlf_line_endings_and_tabs_are_kept():
    text = '{\r\n\t"Logging": {},\r\n\t"Modules": {\r\n\t\t"P": {\r\n\t\t\t"ConnectionStrings": {\r\n' \
           '\t\t\t\t"Default": "x"\r\n\t\t\t}\r\n\t\t}\r\n\t}\r\n}\r\n'
    result = edit_json(text, ["Modules:P:ConnectionStrings:Default"], {"ConnectionStrings:Default": "y"})
    assert "\n" not in result.text.replace("\r\n", "")
    assert '\t"ConnectionStrings": {\r\n\t\t"Default": "y"\r\n\t},\r\n\t"Modules"' in result.text


def test_byte_order_mark_is_kept():
    data = UTF8_BOM + b'{\n  "A": 1\n}\n'
    text, bom = decode_document(data)
    assert bom and text.startswith("{")
    result = edit_json(text, [], {"ConnectionStrings:Default": "x"})
    assert encode_document(result.text, bom).startswith(UTF8_BOM + b'{\n  "ConnectionStrings"')


def test_hostile_values_round_trip():
    text = '{\n  "A": 1\n}\n'
    for value in [SHARED, 'x"; DROP TABLE x; --', "$(rm -rf /)", "back\\slash", "line\nbreak", "\u00e9\u2028"]:
        result = edit_json(text, [], {"ConnectionStrings:Default": value})
        assert json.loads(result.text)["ConnectionStrings"]["Default"] == value


def test_shared_connection_string_survives_hostile_passwords():
    assert parse_connection_string(SHARED) == {"Host": "127.0.0.1", "Port": "5432", "Database": "ClassifiedAds",
                                               "Username": "postgres", "Password": HOSTILE_PASSWORD}
    with_options = shared_connection_string({"host": "db", "database": "ClassifiedAds", "sslmode": "require",
                                             "options": {"Maximum Pool Size": 50, "Search Path": "a;b"}})
    assert with_options == 'Host=db;Port=5432;Database=ClassifiedAds;SSL Mode=Require;Maximum Pool Size=50;' \
                           'Search Path="a;b"'


@pytest.mark.parametrize("text, message", [
    ('{\n  "A": 1\n  "B": 2\n}', "line 3 column 3: expected ',' or '}'"),
    ('{\n  "A": [1, 2\n}', "line 3 column 1: expected ',' or ']'"),
    ('{\n  "A": "Password=secret\n}', "line 2 column 8: unterminated string"),
    ('{\n  /* open', "unterminated /* comment"),
    ("[1, 2]", "not an object"),
    ('{"A": 1} {"B": 2}', "unexpected content after the document"),
])
def test_unparseable_json_is_refused_with_its_position_and_no_content(text, message):
    with pytest.raises(ConfigEditError) as caught:
        edit_json(text, SETTINGS_KEYS, {"ConnectionStrings:Default": "x"})
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("text, remove, set_values, message", [
    ('{"ConnectionStrings": "x"}', [], {"ConnectionStrings:Default": "y"}, "is not an object"),
    ('{"ConnectionStrings": {"Default": {"a": 1}}}', [], {"ConnectionStrings:Default": "y"}, "holds an object"),
    ('{"A": 1}', ["ConnectionStrings:Default"], {"connectionstrings:default": "y"}, "both removed and set"),
    ('{"A": 1}', ["A::B"], {}, "empty part"),
])
def test_impossible_json_edits_are_refused(text, remove, set_values, message):
    with pytest.raises(ConfigEditError, match=message):
        edit_json(text, remove, set_values)


# -------------------------------------------------------------- dotenv

def test_env_cut_over_replaces_the_six_lines_with_one():
    before = fixture(".env")
    shared = SHARED.replace("127.0.0.1", "db")
    result = edit_dotenv(before, ENV_KEYS, {"ConnectionStrings__Default": shared})
    lines = before.splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith("Modules__"))
    assert result.text.splitlines()[:first] == lines[:first]
    assert result.text.splitlines()[first].startswith("ConnectionStrings__Default=")
    assert len(result.text.splitlines()) == len(lines) - 5
    expected = dotenv_data(before)
    for key in ENV_KEYS:
        del expected[key]
    expected["ConnectionStrings__Default"] = shared
    assert dotenv_data(result.text) == expected
    assert edit_dotenv(result.text, ENV_KEYS, {"ConnectionStrings__Default": shared}).text == result.text


def test_env_comments_quotes_and_export_are_kept():
    text = ("# Compose variables\n\nexport ASPNETCORE_ENVIRONMENT=Production  # set by ops\n"
            "QUOTED=\"two words # not a comment\"\nSINGLE='$literal'\n"
            "Modules__Product__ConnectionStrings__Default=\"Host=db;Password=p\"\n"
            "ConnectionStrings__Default='Host=old'\n# end\n")
    result = edit_dotenv(text, ["Modules__Product__ConnectionStrings__Default"],
                         {"ConnectionStrings__Default": "Host=new;Password=p"})
    assert result.text == ("# Compose variables\n\nexport ASPNETCORE_ENVIRONMENT=Production  # set by ops\n"
                           "QUOTED=\"two words # not a comment\"\nSINGLE='$literal'\n"
                           "ConnectionStrings__Default='Host=new;Password=p'\n# end\n")
    assert dotenv_data(text)["ASPNETCORE_ENVIRONMENT"] == "Production"
    assert dotenv_data(text)["QUOTED"] == "two words # not a comment"


@pytest.mark.parametrize("value, written", [
    ("Host=db;Port=5432;Password=plain", "Host=db;Port=5432;Password=plain"),
    ('Host=db;Password="a""b;c$d"', "'Host=db;Password=\"a\"\"b;c$d\"'"),
    ("it's $HOME", '"it\'s \\$HOME"'),
    ("back\\slash", '"back\\\\slash"'),
    ("two\nlines", '"two\\nlines"'),
    ("", ""),
])
def test_env_values_are_quoted_so_compose_reads_them_back(value, written):
    assert format_dotenv_value(value) == written
    text = edit_dotenv("A=1\n", [], {"K": value}).text
    assert text == f"A=1\nK={written}\n"
    assert dotenv_data(text)["K"] == value


def test_env_keeps_the_quote_style_of_the_line_it_replaces():
    assert format_dotenv_value("Host=db", '"') == '"Host=db"'
    assert format_dotenv_value("Host=db", "'") == "'Host=db'"
    text = 'Modules__A__ConnectionStrings__Default="Host=a"\n'
    result = edit_dotenv(text, ["Modules__A__ConnectionStrings__Default"], {"ConnectionStrings__Default": "Host=b"})
    assert result.text == 'ConnectionStrings__Default="Host=b"\n'


def test_env_crlf_and_no_final_newline():
    result = edit_dotenv("A=1\r\nB=2", ["A"], {"C": "3"})
    assert result.text == "C=3\r\nB=2"
    assert edit_dotenv("A=1\r\nB=2", [], {"C": "3"}).text == "A=1\r\nB=2\r\nC=3\r\n"


def test_env_multiline_quoted_value_is_one_entry():
    text = 'KEY="line one\nline two"\nOTHER=1\n'
    assert dotenv_data(text) == {"KEY": "line one\nline two", "OTHER": "1"}
    assert edit_dotenv(text, ["KEY"], {}).text == "OTHER=1\n"


def test_env_unclosed_quote_is_refused():
    with pytest.raises(ConfigEditError, match="line 2: the quoted value of B is not closed"):
        edit_dotenv('A=1\nB="open\n', ["A"], {})


# ------------------------------------------------------------- compose

COMPOSE_SERVICES = ["migrator", "webapi", "background"]
COMPOSE_SET = {"ConnectionStrings__Default": "${ConnectionStrings__Default}", "db:POSTGRES_DB": "ClassifiedAds"}


def test_compose_cut_over_matches_the_reference_change():
    before = fixture("docker-compose.yml")
    result = edit_compose(before, COMPOSE_SERVICES, ENV_KEYS, COMPOSE_SET)
    old, new = yaml.safe_load(before), yaml.safe_load(result.text)
    for name in COMPOSE_SERVICES:
        environment = new["services"][name]["environment"]
        assert environment["ConnectionStrings__Default"] == "${ConnectionStrings__Default}"
        assert not [key for key in environment if key.startswith("Modules__") and "ConnectionStrings" in key]
        expected = dict((key, value) for key, value in old["services"][name]["environment"].items()
                        if key not in ENV_KEYS)
        expected["ConnectionStrings__Default"] = "${ConnectionStrings__Default}"
        assert environment == expected
        # The new variable takes the place of the first removed one.
        keys = [line.strip().split(":")[0] for line in result.text.split(f"    {name}:\n", 1)[1].splitlines()]
        assert keys.index("ConnectionStrings__Default") == list(old["services"][name]["environment"]).index(
            ENV_KEYS[0]) + keys.index("environment") + 1
    assert new["services"]["db"]["environment"]["POSTGRES_DB"] == "ClassifiedAds"
    assert '            POSTGRES_DB: "ClassifiedAds"\n' in result.text  # quoting style kept
    assert "          - 1025:1025 # smtp server\n" in result.text
    for name in ("rabbitmq", "mailhog", "redis"):
        assert new["services"][name] == old["services"][name]
    assert new["volumes"] == old["volumes"]
    assert result.updated == [f"{name}:ConnectionStrings__Default" for name in COMPOSE_SERVICES] + ["db:POSTGRES_DB"]
    assert len(result.removed) == 18
    assert edit_compose(result.text, COMPOSE_SERVICES, ENV_KEYS, COMPOSE_SET).text == result.text


ANCHORED = """\
x-db-env: &db-env
  # legacy per-module databases
  Modules__Product__ConnectionStrings__Default: ${Modules__Product__ConnectionStrings__Default}
  Modules__Storage__ConnectionStrings__Default: ${Modules__Storage__ConnectionStrings__Default}
  Shared__Thing: "1"

services:
  webapi:
    image: webapi
    environment:
      <<: *db-env
      ASPNETCORE_ENVIRONMENT: Production   # comment kept
  background:
    image: background
    environment: *db-env
  worker:
    image: worker
    environment:
      - DOTNET_ENVIRONMENT=Production
      - "Modules__Product__ConnectionStrings__Default=${Modules__Product__ConnectionStrings__Default}"
"""


def test_compose_anchors_merge_keys_aliases_and_lists():
    keys = ["Modules__Product__ConnectionStrings__Default", "Modules__Storage__ConnectionStrings__Default"]
    result = edit_compose(ANCHORED, ["webapi", "background", "worker"], keys,
                          {"ConnectionStrings__Default": "${ConnectionStrings__Default}"})
    new = yaml.safe_load(result.text)
    assert new["services"]["webapi"]["environment"] == {
        "Shared__Thing": "1", "ASPNETCORE_ENVIRONMENT": "Production",
        "ConnectionStrings__Default": "${ConnectionStrings__Default}"}
    assert new["services"]["background"]["environment"] == {
        "Shared__Thing": "1", "ConnectionStrings__Default": "${ConnectionStrings__Default}"}
    assert new["services"]["worker"]["environment"] == [
        "DOTNET_ENVIRONMENT=Production", '"ConnectionStrings__Default=${ConnectionStrings__Default}"'.strip('"')]
    assert "  # legacy per-module databases\n" in result.text
    assert "ASPNETCORE_ENVIRONMENT: Production   # comment kept\n" in result.text
    assert '      - "ConnectionStrings__Default=${ConnectionStrings__Default}"\n' in result.text
    assert edit_compose(result.text, ["webapi", "background", "worker"], keys,
                        {"ConnectionStrings__Default": "${ConnectionStrings__Default}"}).text == result.text


def test_compose_refuses_to_change_a_service_it_does_not_target():
    with pytest.raises(ConfigEditError, match="would also change service background"):
        edit_compose(ANCHORED, ["webapi"], ["Modules__Product__ConnectionStrings__Default"], {})


def test_compose_service_without_environment_gets_one():
    text = "services:\n    api:\n        image: api\n        ports:\n            - \"80:80\"\n"
    result = edit_compose(text, ["api"], [], {"ConnectionStrings__Default": "${ConnectionStrings__Default}"})
    assert result.text == text + ("        environment:\n"
                                  "            ConnectionStrings__Default: ${ConnectionStrings__Default}\n")


def test_compose_crlf_and_hostile_values():
    text = "services:\r\n  api:\r\n    environment:\r\n      A: x\r\n"
    value = 'p"; DROP TABLE x; --: #$'
    result = edit_compose(text, ["api"], [], {"B": value})
    assert result.text == ('services:\r\n  api:\r\n    environment:\r\n      A: x\r\n'
                           '      B: "p\\"; DROP TABLE x; --: #$"\r\n')
    assert yaml.safe_load(result.text)["services"]["api"]["environment"]["B"] == value


@pytest.mark.parametrize("text, services, message", [
    ("services:\n  api:\n    image: a\n", ["web"], "service(s) not defined in the file: web"),
    ("services:\n  api:\n    environment: {A: 1}\n", ["api"], "flow style"),
    ("version: '3'\n", ["api"], "no services mapping"),
    ("services:\n  api: [\n", ["api"], "not valid YAML"),
])
def test_compose_refusals(text, services, message):
    with pytest.raises(ConfigEditError, match=message.replace("(", r"\(").replace(")", r"\)")):
        edit_compose(text, services, ["A"], {"B": "x"})


def test_compose_targets_split_plain_and_qualified_keys():
    assert compose_targets(["a", "b"], ["X", "b:Y"], {"Z": "1", "db:P": "2"}) == {
        "a": (["X"], {"Z": "1"}), "b": (["X", "Y"], {"Z": "1"}), "db": ([], {"P": "2"})}
    with pytest.raises(ConfigEditError, match="neither NAME nor"):
        compose_targets(["a"], [":X"], {})


# ------------------------------------------------------------- secrets

def test_masking_covers_every_spelling_of_a_password():
    json_text = edit_json('{"A": 1}', [], {"ConnectionStrings:Default": SHARED}).text
    env_text = edit_dotenv("A=1\n", [], {"ConnectionStrings__Default": SHARED}).text
    yaml_text = edit_compose("services:\n  a:\n    environment:\n      A: x\n", ["a"], [], {"B": SHARED}).text
    for text, fmt in ((json_text, "json"), (env_text, "dotenv"), (yaml_text, "compose")):
        secrets = document_secrets(fmt, text)
        assert HOSTILE_PASSWORD in secrets
        masked = mask_text(text, secrets)
        assert "DROP TABLE" not in masked and "Password=********" in masked, masked
        assert "Username=postgres" in masked


def test_masking_without_knowing_the_value():
    text = "Server=a;Pwd=hunter2;Database=b\nHost=x;password = 'o''k';Port=1\n"
    assert mask_text(text, []) == "Server=a;Pwd=********;Database=b\nHost=x;password = ********;Port=1\n"


def test_values_under_secret_names_are_masked_but_placeholders_are_not_guessed():
    before = fixture("ClassifiedAds.WebAPI/appsettings.json")
    secrets = document_secrets("json", before)
    assert {LEGACY_PASSWORD, "certificate-Placeholder", "master-key-Placeholder"} <= secrets
    assert "Placeholder" not in mask_text(before, secrets)
    background = fixture("ClassifiedAds.Background/appsettings.json")
    masked = mask_text(background, document_secrets("json", background))
    assert '"ClientSecret": "xxx"' in masked  # a placeholder under a secret-looking name is not worth guessing
    assert '"Password": ********' in masked  # the RabbitMQ password
    assert '"UserName": ********' in masked  # the same value elsewhere: masking errs on the safe side
    compose = fixture("docker-compose.yml")
    assert "Placeholder" not in mask_text(compose, document_secrets("compose", compose))


def test_connection_string_pairs_follow_npgsql_quoting():
    assert connection_string_pairs('Host=a; Password="x;""y" ;Pwd=\'z\'\'w\';Port=1') == [
        ("Host", "a"), ("Password", 'x;"y'), ("Pwd", "z'w"), ("Port", "1")]
    assert connection_string_secrets("no connection string here") == []


# ------------------------------------------------------ saved originals

def test_backup_names_are_stable_readable_and_distinct():
    name = backup_name("/srv/classifiedads/ClassifiedAds.WebAPI/appsettings.json")
    assert name == backup_name("/srv/classifiedads/ClassifiedAds.WebAPI/appsettings.json")
    assert name.startswith("srv_classifiedads_ClassifiedAds.WebAPI_appsettings.json.")
    assert backup_name("/a/b_c") != backup_name("/a_b/c")
    assert backup_name("/srv/app/.env").startswith("srv_app_.env.")
    assert "/" not in backup_name("/" + "x/" * 200 + "f")


ENTRY = {"name": "srv_app_.env.0123", "sha256": "aa", "mode": "0640"}


@pytest.mark.parametrize("current, mode, saved, action", [
    ("aa", "0640", None, "none"),  # already the original: the saved copy is not needed
    ("aa", "0644", None, "mode"),
    ("bb", "0640", "aa", "restore"),
    (None, None, "aa", "restore"),  # the file was deleted
])
def test_restore_action(current, mode, saved, action):
    assert restore_action("/srv/app/.env", ENTRY, current, mode, saved) == action


@pytest.mark.parametrize("saved, message", [
    ("cc", "the saved original srv_app_.env.0123 of /srv/app/.env does not match the sha256"),
    (None, "the saved original srv_app_.env.0123 of /srv/app/.env is missing"),
])
def test_restore_refuses_a_damaged_original(saved, message):
    with pytest.raises(ConfigStoreError, match=message):
        restore_action("/srv/app/.env", ENTRY, "bb", "0640", saved)


def test_non_utf8_file_is_refused():
    with pytest.raises(ConfigEditError, match="not UTF-8"):
        decode_document(b'{"A": "\xff"}')
