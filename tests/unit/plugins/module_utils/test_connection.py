"""The connection contract (connection.py, libpq.py): what reaches libpq, and what libpq is left to decide."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    SERVICE,
    Endpoint,
    connect_params,
    extra_keywords,
    libpq_environment,
    same_server,
    secrets_of,
    service_problems,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import address, public_endpoint
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.libpq import effective
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import (
    connection_string_pairs,
    npgsql_connection_string,
)

LIBPQ_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY",
                   "PGCONNECT_TIMEOUT", "PGPASSFILE", "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGDATABASE")


@pytest.fixture(autouse=True)
def clean_libpq_environment(monkeypatch):
    for var in LIBPQ_VARIABLES:
        monkeypatch.delenv(var, raising=False)


def test_options_not_given_are_not_passed_so_libpq_reads_its_environment():
    params = connect_params({"host": "db", "maintenance_db": "postgres"}, "ClassifiedAds")
    assert "port" not in params and "sslmode" not in params and "user" not in params
    assert params["host"] == "db" and params["dbname"] == "ClassifiedAds"


def test_the_timeout_falls_back_to_ten_seconds_only_without_pgconnect_timeout(monkeypatch):
    assert connect_params({}, "postgres")["connect_timeout"] == 10
    assert connect_params({"connect_timeout": 3}, "postgres")["connect_timeout"] == 3
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "4")
    assert "connect_timeout" not in connect_params({}, "postgres")


def test_client_certificate_options_become_libpq_sslcert_and_sslkey():
    params = connect_params({"ssl_cert": "/c.crt", "ssl_key": "/c.key", "sslrootcert": "/ca.crt"}, "postgres")
    assert (params["sslcert"], params["sslkey"], params["sslrootcert"]) == ("/c.crt", "/c.key", "/ca.crt")


def test_connect_params_reach_libpq_as_text():
    params = connect_params({"connect_params": {"target_session_attrs": "read-write", "keepalives": True,
                                                "keepalives_idle": 30, "sslcrl": None}}, "postgres")
    assert (params["target_session_attrs"], params["keepalives"], params["keepalives_idle"]) == (
        "read-write", "1", "30")
    assert "sslcrl" not in params


def test_connect_params_that_duplicate_an_option_or_a_decided_keyword_are_refused_by_name():
    endpoint = Endpoint("source", {"connect_params": {"sslcert": "/x", "port": 1, "password": "p", "dbname": "d",
                                                      "service": "s", "application_name": "a"}})
    with pytest.raises(ConsolidationError) as refused:
        extra_keywords(endpoint)
    problems = refused.value.problems
    assert "source.connect_params.sslcert: set the option ssl_cert instead" in problems
    assert "source.connect_params.port: set the option port instead" in problems
    assert "source.connect_params.password: set the option password instead" in problems
    assert [p for p in problems if p.startswith(("source.connect_params.dbname is not accepted",
                                                 "source.connect_params.service is not accepted",
                                                 "source.connect_params.application_name is not accepted"))]
    assert len(problems) == 6


def test_a_value_the_service_file_cannot_carry_is_refused():
    with pytest.raises(ConsolidationError, match="connect_params.sslpassword: a value with a line break"):
        extra_keywords({"connect_params": {"sslpassword": "two\nlines"}})


def test_secrets_are_the_password_and_the_sslpassword():
    assert sorted(secrets_of({"password": "pw", "connect_params": {"sslpassword": "key-pass", "sslcrl": "/c"}})) == [
        "key-pass", "pw"]
    assert secrets_of({"connect_params": None}) == []


def test_effective_values_follow_libpq_given_then_environment_then_built_in(monkeypatch):
    assert (effective({}, "port"), effective({}, "sslmode"), effective({}, "host")) == (5432, "prefer", None)
    monkeypatch.setenv("PGPORT", "6543")
    monkeypatch.setenv("PGHOST", "envhost")
    assert (effective({}, "port"), effective({}, "host")) == (6543, "envhost")
    assert effective({"port": 7000, "host": "given"}, "port") == 7000
    assert address({}) == "envhost:6543"
    assert public_endpoint({"user": "u"}) == {"host": "envhost", "port": 6543, "user": "u"}


def test_same_server_compares_what_libpq_would_reach(monkeypatch):
    monkeypatch.setenv("PGPORT", "6543")
    assert same_server({"host": "db"}, {"host": "db", "port": 6543})
    assert not same_server({"host": "db"}, {"host": "db", "port": 5432})


def test_client_programs_get_given_options_as_variables_and_keep_the_environment_for_the_others(monkeypatch):
    monkeypatch.setenv("PGPORT", "6543")
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.setenv("PGSERVICEFILE", "/someone/elses.conf")
    endpoint = {"host": "db", "ssl_cert": "/c.crt", "ssl_key": "/c.key"}
    with libpq_environment(endpoint, "ClassifiedAds") as env:
        assert (env["PGHOST"], env["PGSSLCERT"], env["PGSSLKEY"]) == ("db", "/c.crt", "/c.key")
        assert (env["PGPORT"], env["PGSSLMODE"], env["PGDATABASE"]) == ("6543", "verify-full", "ClassifiedAds")
        assert env["PGCONNECT_TIMEOUT"] == "10"
        assert "PGSERVICE" not in env and "PGSERVICEFILE" not in env


@pytest.mark.parametrize("value", ["elsewhere", ""])
def test_a_service_in_the_environment_is_refused_by_both_paths_naming_the_side(monkeypatch, value):
    endpoint = Endpoint("target", {"host": "db"})
    assert service_problems(endpoint) == []
    monkeypatch.setenv("PGSERVICE", value)
    [problem] = service_problems(endpoint)
    assert problem.startswith(f"PGSERVICE={value} is set in the environment the modules run in")
    assert "the target server" in problem and "unset PGSERVICE" in problem and "target options" in problem
    with pytest.raises(ConsolidationError, match="PGSERVICE=") as psycopg2_path:
        connect_params(endpoint, "db")
    with pytest.raises(ConsolidationError, match="PGSERVICE=") as program_path:
        with libpq_environment(endpoint, "db"):
            pass
    assert psycopg2_path.value.problems == program_path.value.problems == [problem]


def test_connect_params_reach_client_programs_through_a_private_service_file_removed_afterwards(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    endpoint = {"password": "pw:1", "connect_params": {"sslpassword": "key-pass", "target_session_attrs": "any"}}
    with libpq_environment(endpoint, "db") as env:
        service_file, passfile = env["PGSERVICEFILE"], env["PGPASSFILE"]
        assert env["PGSERVICE"] == SERVICE and "PGPASSWORD" not in env
        for path in (service_file, passfile):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(service_file)).st_mode) == 0o700
        with open(service_file) as handle:
            assert handle.read() == f"[{SERVICE}]\nsslpassword=key-pass\ntarget_session_attrs=any\n"
        with open(passfile) as handle:
            assert handle.read() == "*:*:*:*:pw\\:1\n"
        assert "key-pass" not in "".join(value for key, value in env.items() if key != "PGSERVICEFILE")
    assert not os.path.exists(os.path.dirname(service_file))


def test_npgsql_string_names_the_server_libpq_reaches_and_the_client_certificate(monkeypatch):
    monkeypatch.setenv("PGPORT", "6543")
    endpoint = {"host": "db", "user": "app", "sslmode": "verify-full", "sslrootcert": "/ca.crt",
                "ssl_cert": "/c.crt", "ssl_key": "/c.key", "connect_params": {"sslpassword": "a;b"}}
    pairs = dict(connection_string_pairs(npgsql_connection_string(endpoint, "ClassifiedAds")))
    assert pairs == {"Host": "db", "Port": "6543", "Database": "ClassifiedAds", "Username": "app",
                     "SSL Mode": "VerifyFull", "Root Certificate": "/ca.crt", "SSL Certificate": "/c.crt",
                     "SSL Key": "/c.key", "SSL Password": "a;b"}
