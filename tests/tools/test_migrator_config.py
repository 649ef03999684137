"""Connection string parsing and configuration precedence of the stand-in migrator (no server needed)."""

from __future__ import annotations

import json

import pytest
from devkit import migrator
from devkit.migrator import ConfigurationError, connect_kwargs, parse_connection_string, resolve_connection_string

SHARED = "Host=127.0.0.1;Port=5432;Database=ClassifiedAds;Username=postgres;Password=Pa55word"


# -- parse_connection_string ------------------------------------------------------------------------

def test_parses_the_applications_connection_string():
    assert parse_connection_string(SHARED) == {
        "Host": "127.0.0.1", "Port": "5432", "Database": "ClassifiedAds", "Username": "postgres",
        "Password": "Pa55word"}


@pytest.mark.parametrize("text", [
    "host=db;PORT=5433;database=ClassifiedAds;USERNAME=app;password=pw",
    "Server=db;Port=5433;DB=ClassifiedAds;User ID=app;PWD=pw",
    "server = db ; port= 5433 ;Db=ClassifiedAds; UserId=app ;Psw=pw;",
    ";;Host=db;Port=5433;Database=ClassifiedAds;UID=app;Password=pw;;",
])
def test_keywords_are_case_insensitive_and_synonyms_are_understood(text):
    assert parse_connection_string(text) == {
        "Host": "db", "Port": "5433", "Database": "ClassifiedAds", "Username": "app", "Password": "pw"}


@pytest.mark.parametrize("raw, value", [
    ("Password='a;b=c'", "a;b=c"),
    ('Password="it\'s"', "it's"),
    ("Password='it''s'", "it's"),
    ('Password="say ""hi"""', 'say "hi"'),
    ("Password='  padded  '", "  padded  "),
    ("Password=  spaced out  ", "spaced out"),
    ("Password=", ""),
])
def test_values_may_be_quoted(raw, value):
    assert parse_connection_string(f"Host=h;{raw};Database=d")["Password"] == value


def test_last_repeated_keyword_wins():
    assert parse_connection_string("Host=a;Server=b")["Host"] == "b"


def test_doubled_equals_sign_is_part_of_the_keyword():
    with pytest.raises(ConfigurationError, match="Keyword not supported: 'a=b'"):
        parse_connection_string("a==b=c")


def test_known_npgsql_keywords_are_ignored():
    settings = parse_connection_string(SHARED + ";Pooling=false;Command Timeout=60;Include Error Detail=true")
    assert set(settings) == {"Host", "Port", "Database", "Username", "Password"}


@pytest.mark.parametrize("text, message", [
    ("Host=h;Passwrd=x", "Keyword not supported: 'Passwrd'"),
    ("Host=h;justaword", "'justaword' is not a keyword=value pair"),
    ("Host=h;=value", "a value has no keyword"),
    ("Host=h;Password='open", "quoted value of 'Password' is not closed"),
    ("Host=h;Password='closed' trailing", "unexpected text after the quoted value of 'Password'"),
])
def test_malformed_connection_strings_are_rejected(text, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_connection_string(text)


def test_errors_name_keywords_never_password_values():
    with pytest.raises(ConfigurationError) as raised:
        parse_connection_string("Host=h;Password='s3cr3t")
    assert "s3cr3t" not in str(raised.value)


# -- connect_kwargs ----------------------------------------------------------------------------------

def test_connect_kwargs_for_psycopg2():
    assert connect_kwargs(parse_connection_string(SHARED + ";SSL Mode=VerifyFull;Timeout=5")) == {
        "host": "127.0.0.1", "port": 5432, "dbname": "ClassifiedAds", "user": "postgres", "password": "Pa55word",
        "sslmode": "verify-full", "connect_timeout": 5, "application_name": "classifiedads-migrator"}


def test_connect_kwargs_defaults_like_npgsql():
    kwargs = connect_kwargs(parse_connection_string("Host=db;Username=app;Passfile=/tmp/pgpass"))
    assert kwargs["dbname"] == "app"  # Npgsql: the database defaults to the user name
    assert kwargs["connect_timeout"] == 15
    assert kwargs["passfile"] == "/tmp/pgpass"
    assert "port" not in kwargs and "password" not in kwargs


def test_client_certificate_keywords_reach_libpq():
    text = "Host=db;Database=d;Root Certificate=/ca.crt;SslCertificate=/c.crt;SSL Key=/c.key;SSL Password='a;b'"
    kwargs = connect_kwargs(parse_connection_string(text))
    assert (kwargs["sslrootcert"], kwargs["sslcert"], kwargs["sslkey"], kwargs["sslpassword"]) == (
        "/ca.crt", "/c.crt", "/c.key", "a;b")


@pytest.mark.parametrize("text, message", [
    ("Database=d", "Host is missing"),
    ("Host=h", "Database is missing"),
    ("Host=h;Database=d;Port=70000", "Port must be a number from 1 to 65535"),
    ("Host=h;Database=d;Port=-1", "Port must be a number"),
    ("Host=h;Database=d;Timeout=soon", "Timeout must be a number"),
    ("Host=h;Database=d;SSL Mode=Always", "SSL Mode 'Always' is not one of"),
])
def test_invalid_settings_are_rejected(text, message):
    with pytest.raises(ConfigurationError, match=message):
        connect_kwargs(parse_connection_string(text))


def test_describe_leaves_the_password_out():
    description = migrator.describe(connect_kwargs(parse_connection_string(SHARED)))
    assert description == '127.0.0.1:5432 database "ClassifiedAds" as user "postgres"'


# -- resolve_connection_string ----------------------------------------------------------------------

def _write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_environment_variable_alone():
    value, source = resolve_connection_string(None, {"ConnectionStrings__Default": SHARED})
    assert (value, source) == (SHARED, "environment variable ConnectionStrings__Default")


def test_appsettings_alone(tmp_path):
    path = _write(tmp_path / "appsettings.json", {"ConnectionStrings": {"Default": SHARED}})
    assert resolve_connection_string(path, {}) == (SHARED, f"ConnectionStrings:Default in {path}")


def test_environment_overrides_appsettings(tmp_path):
    path = _write(tmp_path / "appsettings.json", {"ConnectionStrings": {"Default": "Host=from-json"}})
    value, source = resolve_connection_string(path, {"ConnectionStrings__Default": "Host=from-env"})
    assert (value, source) == ("Host=from-env", "environment variable ConnectionStrings__Default")


def test_environment_variable_name_is_case_insensitive():
    assert resolve_connection_string(None, {"CONNECTIONSTRINGS__DEFAULT": "Host=x"})[0] == "Host=x"


def test_json_keys_are_case_insensitive_and_colon_keys_work(tmp_path):
    nested = _write(tmp_path / "a.json", {"connectionStrings": {"default": "Host=nested"}})
    flat = _write(tmp_path / "b.json", {"ConnectionStrings:Default": "Host=flat"})
    assert resolve_connection_string(nested, {})[0] == "Host=nested"
    assert resolve_connection_string(flat, {})[0] == "Host=flat"


def test_environment_specific_file_overrides_the_base_file(tmp_path):
    path = _write(tmp_path / "appsettings.json", {"ConnectionStrings": {"Default": "Host=base"}})
    _write(tmp_path / "appsettings.Staging.json", {"ConnectionStrings": {"Default": "Host=staging"}})
    _write(tmp_path / "appsettings.Production.json", {"Unrelated": 1})
    assert resolve_connection_string(path, {"DOTNET_ENVIRONMENT": "Staging"})[0] == "Host=staging"
    assert resolve_connection_string(path, {})[0] == "Host=base"  # Production overlay does not set it


def test_comments_and_trailing_commas_are_accepted(tmp_path):
    path = _write(tmp_path / "appsettings.json", """{
      // the shared database
      "ConnectionStrings": { /* one for all modules */ "Default": "Host=db;Password=a//b,}", },
      "Modules": [1, 2,],
    }""")
    assert resolve_connection_string(path, {})[0] == "Host=db;Password=a//b,}"


@pytest.mark.parametrize("content, environ, message", [
    ({"Logging": {}}, {}, "no connection string"),
    ({"ConnectionStrings": {"Default": ""}}, {}, "is empty"),
    ({"ConnectionStrings": {"Default": None}}, {}, "is empty"),
    ({"ConnectionStrings": {"Default": "Host=json"}}, {"ConnectionStrings__Default": ""}, "is empty"),
    ("{ not json", {"ConnectionStrings__Default": "Host=env"}, "cannot read settings file"),
])
def test_missing_or_invalid_configuration(tmp_path, content, environ, message):
    path = _write(tmp_path / "appsettings.json", content)
    with pytest.raises(ConfigurationError, match=message):
        resolve_connection_string(path, environ)


def test_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_connection_string(str(tmp_path / "nope.json"), {"ConnectionStrings__Default": SHARED})


def test_no_configuration_at_all():
    with pytest.raises(ConfigurationError, match="ConnectionStrings__Default"):
        resolve_connection_string(None, {"OTHER": "x"})


# -- main -------------------------------------------------------------------------------------------

def test_main_reports_configuration_errors_in_one_line_without_the_password(capsys):
    code = migrator.main([], {"ConnectionStrings__Default": "Host=h;Port=99999;Database=d;Password=Top-Secret"})
    out, err = capsys.readouterr()
    assert code == 2
    assert err == "classifiedads-migrator: error: connection string: Port must be a number from 1 to 65535, " \
                  "not '99999'\n"
    assert "Top-Secret" not in out + err
