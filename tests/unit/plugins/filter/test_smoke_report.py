"""The smoke role's verdict (plugins/filter/smoke.py), case by case on registered result shapes."""

from __future__ import annotations

import json

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.filter import smoke

BASE = "http://127.0.0.1:9002"
MARKER = "smoke-run1-0badcafe"
REFUSED = "Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] Connection refused>"


def answered(spec, status, content="", **extra):
    """A uri loop item that got an answer (uri reports the absolute URL it asked)."""
    return {"item": spec, "url": BASE + spec["url"], "status": status, "content": content,
            "msg": f"OK ({len(content)} bytes)", "changed": False, **extra}


def unanswered(spec, msg=REFUSED):
    return {"item": spec, "url": BASE + spec["url"], "status": -1, "msg": msg, "changed": False}


def skipped(item):
    return {"item": item, "skipped": True, "skip_reason": "Conditional result was False", "changed": False}


def counted(probe, check, rows):
    return {"item": [probe, check], "query_result": rows, "changed": False}


def query_failed(probe, check, msg):
    return {"item": [probe, check], "msg": msg, "changed": False}


HEALTH = {"name": "health endpoint", "url": "/health"}
PRODUCT = {"name": "create a product", "url": "/api/products", "method": "POST", "body": {"code": "{marker}"}}
ROW = {"name": 'product row in product."Products"', "query": "SELECT count(*) ...", "expect_rows": 1}


# -- read-only HTTP checks --------------------------------------------------------------------------

def test_a_check_that_answers_its_status_passes():
    assert smoke.http_outcome(answered(HEALTH, 200, '{"status": "Healthy"}')) == {
        "name": "health endpoint", "result": "passed", "detail": "GET http://127.0.0.1:9002/health answered 200"}


def test_a_check_with_another_status_fails_naming_the_expected_status_and_the_body():
    check = {"name": "products answer 204", "url": "/api/products", "status": 204}
    outcome = smoke.http_outcome(answered(check, 200, '[{"code": "TEST"}]'))
    assert outcome["result"] == "failed"
    assert outcome["detail"] == (
        'GET http://127.0.0.1:9002/api/products answered 200, expected 204; body: [{"code": "TEST"}]')


def test_an_expected_status_given_as_text_is_compared_as_a_number():
    assert smoke.http_outcome(answered({**HEALTH, "status": "200"}, 200))["result"] == "passed"


def test_a_body_without_the_expected_text_fails_with_the_text_as_json():
    check = {"name": "lists a product", "url": "/api/products", "contains": 'NO-"SUCH"-CODE'}
    outcome = smoke.http_outcome(answered(check, 200, "[]"))
    assert outcome["result"] == "failed"
    assert outcome["detail"] == (
        'GET http://127.0.0.1:9002/api/products answered 200, body lacks "NO-\\"SUCH\\"-CODE"; body: []')


def test_a_body_with_the_expected_text_passes():
    check = {"name": "lists PD001", "url": "/api/products", "contains": "PD001"}
    assert smoke.http_outcome(answered(check, 200, '[{"code": "PD001"}]'))["result"] == "passed"


def test_a_wrong_status_and_a_missing_text_are_both_named():
    check = {"name": "lists PD001", "url": "/api/products", "contains": "PD001"}
    outcome = smoke.http_outcome(answered(check, 500, "boom"))
    assert outcome["detail"] == (
        'GET http://127.0.0.1:9002/api/products answered 500, expected 200, body lacks "PD001"; body: boom')


def test_a_check_without_an_answer_fails_with_the_reason():
    outcome = smoke.http_outcome(unanswered(HEALTH))
    assert outcome == {"name": "health endpoint", "result": "failed",
                       "detail": "GET http://127.0.0.1:9002/health got no answer: " + REFUSED}


def test_a_check_skipped_in_check_mode_names_the_configured_request():
    check = {"name": "a post among the checks", "url": "/api/products", "method": "post"}
    assert smoke.http_outcome(skipped(check)) == {
        "name": "a post among the checks", "result": "skipped",
        "detail": "check mode, POST /api/products not sent (not read-only)"}


def test_the_body_excerpt_is_the_first_300_characters_on_one_line():
    body = "line one\n\n\tline two " + "x" * 400
    detail = smoke.http_outcome(answered({**HEALTH, "status": 204}, 200, body))["detail"]
    excerpt = detail.split("; body: ", 1)[1]
    assert excerpt == " ".join(body[:300].split()) and "\n" not in excerpt
    assert excerpt.startswith("line one line two xxx")


def test_an_empty_body_gives_the_module_message_as_excerpt():
    result = answered({**HEALTH, "status": 204}, 200, "")
    assert smoke.http_outcome(result)["detail"].endswith("; body: OK (0 bytes)")


# -- write probes -----------------------------------------------------------------------------------

def test_a_probe_that_answers_its_status_passes_and_shows_the_new_id():
    result = answered(PRODUCT, 201, '{"id": "4f1c"}', json={"id": "4f1c", "code": MARKER})
    assert smoke.write_outcome(result) == {
        "name": "create a product", "result": "passed",
        "detail": "POST http://127.0.0.1:9002/api/products answered 201 (id 4f1c)"}


@pytest.mark.parametrize("extra", [{}, {"json": ["not", "an", "object"]}, {"json": {"code": "x"}},
                                   {"json": {"id": None}}], ids=["no json", "a list", "no id", "null id"])
def test_a_probe_answer_without_an_id_shows_none(extra):
    result = answered(PRODUCT, 201, "{}", **extra)
    assert smoke.write_outcome(result)["detail"] == "POST http://127.0.0.1:9002/api/products answered 201"


def test_a_probe_with_another_status_fails_with_the_body():
    outcome = smoke.write_outcome(answered(PRODUCT, 400, '{"errors": {"Code": ["required"]}}'))
    assert outcome["result"] == "failed"
    assert outcome["detail"] == ('POST http://127.0.0.1:9002/api/products answered 400, expected 201; '
                                 'body: {"errors": {"Code": ["required"]}}')


def test_a_probe_with_its_own_status_and_method():
    probe = {**PRODUCT, "method": "put", "status": 200}
    outcome = smoke.write_outcome(answered(probe, 200))
    assert outcome["result"] == "passed" and outcome["detail"].startswith("PUT http://")


def test_a_probe_without_an_answer_fails_with_the_reason():
    assert smoke.write_outcome(unanswered(PRODUCT, "Request failed: timed out"))["detail"] == (
        "POST http://127.0.0.1:9002/api/products got no answer: Request failed: timed out")


def test_a_probe_skipped_in_check_mode_says_its_db_checks_did_not_run():
    assert smoke.write_outcome(skipped(PRODUCT)) == {
        "name": "create a product", "result": "skipped",
        "detail": "check mode, POST /api/products not sent (it would create a record), nor its db_checks run"}


# -- database checks --------------------------------------------------------------------------------

def test_a_count_equal_to_expect_rows_passes_naming_database_and_marker():
    assert smoke.db_outcome(counted(PRODUCT, ROW, [{"count": 1}]), MARKER, "ClassifiedAds") == {
        "name": 'product row in product."Products"', "result": "passed",
        "detail": "counted 1, expected 1 (database ClassifiedAds, marker smoke-run1-0badcafe)"}


def test_a_count_that_differs_fails():
    outcome = smoke.db_outcome(counted(PRODUCT, ROW, [{"count": 0}]), MARKER, "ClassifiedAds")
    assert outcome["result"] == "failed"
    assert outcome["detail"] == "counted 0, expected 1 (database ClassifiedAds, marker smoke-run1-0badcafe)"


def test_expect_rows_given_as_text_is_compared_as_a_number():
    check = {**ROW, "expect_rows": "2"}
    outcome = smoke.db_outcome(counted(PRODUCT, check, [{"count": 2}]), MARKER, "ClassifiedAds")
    assert outcome["result"] == "passed" and outcome["detail"].startswith("counted 2, expected 2 ")


def test_the_probe_database_is_named_over_the_default():
    probe = {**PRODUCT, "database": HOSTILE}
    detail = smoke.db_outcome(counted(probe, ROW, [{"count": 1}]), MARKER, "ClassifiedAds")["detail"]
    assert detail == f"counted 1, expected 1 (database {HOSTILE}, marker {MARKER})"


@pytest.mark.parametrize("rows", [[], [{"count": 1}, {"count": 1}], [{"count": 1, "extra": 2}], [{"count": "1"}],
                                  [{"count": None}]],
                         ids=["no row", "two rows", "two columns", "text", "null"])
def test_anything_but_one_row_with_one_number_fails_showing_what_came_back(rows):
    outcome = smoke.db_outcome(counted(PRODUCT, ROW, rows), MARKER, "ClassifiedAds")
    assert outcome["result"] == "failed"
    assert outcome["detail"] == (
        f"the query must return one row with one number (SELECT count(*) ...), it returned {json.dumps(rows)} "
        "(database ClassifiedAds, marker smoke-run1-0badcafe)")


def test_a_failed_query_gives_the_error_as_it_came_without_the_place():
    msg = "Cannot execute SQL: ERROR:  cannot execute INSERT in a read-only transaction\n"
    assert smoke.db_outcome(query_failed(PRODUCT, ROW, msg), MARKER, "ClassifiedAds") == {
        "name": 'product row in product."Products"', "result": "failed", "detail": "query failed: " + msg}


# -- the report -------------------------------------------------------------------------------------

def loop(*results):
    return {"results": list(results), "changed": False, "msg": "All items completed"}


def test_the_report_lists_checks_then_probes_then_db_checks_and_passes_when_none_failed():
    report = smoke.smoke_report(loop(answered(HEALTH, 200)), loop(answered(PRODUCT, 201)),
                                loop(counted(PRODUCT, ROW, [{"count": 1}])), MARKER, "ClassifiedAds")
    assert [outcome["name"] for outcome in report["outcomes"]] == [
        "health endpoint", "create a product", 'product row in product."Products"']
    assert report["passed"] is True and report["message"] == ""
    assert report["lines"] == [
        "PASSED health endpoint: GET http://127.0.0.1:9002/health answered 200",
        "PASSED create a product: POST http://127.0.0.1:9002/api/products answered 201",
        'PASSED product row in product."Products": counted 1, expected 1 '
        "(database ClassifiedAds, marker smoke-run1-0badcafe)"]


def test_the_failure_message_counts_and_names_every_failed_check():
    audit = {**ROW, "name": "audit entry"}
    report = smoke.smoke_report(loop(answered(HEALTH, 200), unanswered({**HEALTH, "name": "second"})),
                                loop(answered(PRODUCT, 201)),
                                loop(counted(PRODUCT, ROW, [{"count": 0}]), counted(PRODUCT, audit, [{"count": 1}])),
                                MARKER, "ClassifiedAds")
    assert report["passed"] is False
    assert [outcome["result"] for outcome in report["outcomes"]] == ["passed", "failed", "passed", "failed", "passed"]
    assert report["message"] == (
        "2 smoke check(s) failed (marker smoke-run1-0badcafe): "
        "second: GET http://127.0.0.1:9002/health got no answer: " + REFUSED + " | "
        'product row in product."Products": counted 0, expected 1 (database ClassifiedAds, marker smoke-run1-0badcafe)')
    assert report["lines"][1] == "FAILED second: GET http://127.0.0.1:9002/health got no answer: " + REFUSED


def test_check_mode_reports_skipped_outcomes_and_leaves_out_the_skipped_db_checks():
    report = smoke.smoke_report(loop(answered(HEALTH, 200), skipped({**HEALTH, "method": "POST"})),
                                loop(skipped(PRODUCT)), loop(skipped([PRODUCT, ROW])), MARKER, "ClassifiedAds")
    assert [outcome["result"] for outcome in report["outcomes"]] == ["passed", "skipped", "skipped"]
    assert report["passed"] is True
    assert report["lines"][1] == "SKIPPED health endpoint: check mode, POST /health not sent (not read-only)"


def test_no_checks_at_all_say_so():
    empty = {"results": [], "skipped": True, "skipped_reason": "No items in the list", "changed": False}
    report = smoke.smoke_report(empty, empty, empty, MARKER, "ClassifiedAds")
    assert report == {"outcomes": [], "passed": True, "lines": ["no smoke checks configured"], "message": ""}


def test_a_detail_spanning_lines_is_shown_line_by_line():
    report = smoke.smoke_report(loop(unanswered(HEALTH, "first\nsecond")), loop(), loop(), MARKER, "ClassifiedAds")
    assert report["lines"] == ["FAILED health endpoint: GET http://127.0.0.1:9002/health got no answer: first",
                               "second"]


def test_the_filter_is_published_as_smoke_report():
    assert smoke.FilterModule().filters() == {"smoke_report": smoke.smoke_report}
