"""Npgsql connection strings (module_utils/npgsql.py): built with Npgsql's quoting, read back the same way."""

from __future__ import annotations

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import (
    connection_string_pairs,
    npgsql_connection_string,
    quote_value,
    shared_connection_string,
)


def test_values_are_quoted_only_when_they_must_be():
    assert quote_value("ClassifiedAds") == "ClassifiedAds"
    assert quote_value(5432) == "5432"
    assert quote_value(" padded") == '" padded"'
    assert quote_value('a;b="c"') == '"a;b=""c"""'


def test_options_follow_the_standard_keywords_and_none_leaves_one_out():
    endpoint = {"host": "db", "user": "app", "sslmode": "verify-full"}
    assert npgsql_connection_string(endpoint, "ClassifiedAds", {"Maximum Pool Size": 50, "Timeout": None}) == (
        "Host=db;Port=5432;Database=ClassifiedAds;Username=app;SSL Mode=VerifyFull;Maximum Pool Size=50")


def test_the_shared_string_reads_back_to_what_was_given():
    connection = {"host": "db", "database": HOSTILE, "user": "app", "password": HOSTILE,
                  "options": {"Application Name": "a;b"}}
    pairs = dict(connection_string_pairs(shared_connection_string(connection)))
    assert pairs == {"Host": "db", "Port": "5432", "Database": HOSTILE, "Username": "app", "Password": HOSTILE,
                     "Application Name": "a;b"}
