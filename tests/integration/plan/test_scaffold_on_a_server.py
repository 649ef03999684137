"""The shared journal and error wording against a real server: what psycopg2 and PostgreSQL really produce."""

from __future__ import annotations

import io

import psycopg2
import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import postgres_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal

pytestmark = pytest.mark.integration


@pytest.fixture
def cursor(target_cluster):
    conn = psycopg2.connect(**target_cluster.connect_kwargs("postgres"))
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE claims (id int PRIMARY KEY, secret text, user_id int NOT NULL)")
            yield cur
    finally:
        conn.close()


def test_in_check_mode_a_change_is_recorded_with_its_parameters_bound_and_not_run(cursor):
    journal = QueryJournal(check_mode=True)
    journal.change(cursor, "INSERT INTO claims VALUES (%s, %s, %s)", (1, "x'y", 2))
    journal.execute(cursor, "SELECT count(*) FROM claims WHERE secret = %s", ("x'y",))
    assert cursor.fetchone() == (0,)
    assert journal.queries == ["INSERT INTO claims VALUES (1, 'x''y', 2)",
                               "SELECT count(*) FROM claims WHERE secret = 'x''y'"]


def test_a_statement_that_fails_is_still_reported(cursor):
    journal = QueryJournal()
    with pytest.raises(psycopg2.errors.UndefinedTable):
        journal.execute(cursor, "SELECT * FROM no_such_table WHERE id = %s", (7,))
    assert journal.queries == ["SELECT * FROM no_such_table WHERE id = 7"]


@pytest.mark.parametrize("copy_format, data", [
    ("binary", None),  # filled in from a source table below
    ("text", "1\talice@example.com\t5\n2\tbob-private\t\\N\n"),
])
def test_a_not_null_violation_during_copy_is_one_line_without_the_row(cursor, copy_format, data):
    if data is None:
        cursor.execute("CREATE TEMPORARY TABLE source (id int, secret text, user_id int)")
        cursor.execute("INSERT INTO source VALUES (1, 'alice@example.com', 5), (2, 'bob-private', NULL)")
        stream = io.BytesIO()
        cursor.copy_expert("COPY source TO STDOUT (FORMAT binary)", stream)
        stream.seek(0)
    else:
        stream = io.BytesIO(data.encode())
    with pytest.raises(psycopg2.errors.NotNullViolation) as caught:
        cursor.copy_expert(f"COPY claims FROM STDIN (FORMAT {copy_format})", stream)
    problem = postgres_problem(caught.value)
    assert problem == ('null value in column "user_id" of relation "claims" violates not-null constraint; '
                       "COPY claims, line 2")
    assert "bob-private" in str(caught.value)  # the server did send the row ...
    assert "bob" not in problem  # ... and it is left out


def test_a_duplicate_key_keeps_the_key_but_not_the_row(cursor):
    cursor.execute("INSERT INTO claims VALUES (1, 'alice@example.com', 5)")
    with pytest.raises(psycopg2.errors.UniqueViolation) as caught:
        cursor.execute("INSERT INTO claims VALUES (1, 'bob-private', 6)")
    assert postgres_problem(caught.value) == ('duplicate key value violates unique constraint "claims_pkey"; '
                                              "Key (id)=(1) already exists.")
