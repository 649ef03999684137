# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smoke role's verdict: each registered HTTP check, write probe and database check judged.

The role registers the results with ``failed_when: false`` so that every check
runs; this filter decides what passed, words each outcome for the report and
the final failure, and leaves Jinja only the wiring (documented in
smoke_report.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from collections.abc import Mapping
from numbers import Number

# The answer's first characters shown when a check fails, on one line.
EXCERPT_LENGTH = 300


def _skipped(result):
    return bool(result.get("skipped"))


def _request(spec, result, method):
    """``METHOD url``: the URL the module asked (absolute), or the configured one when nothing was sent."""
    return "%s %s" % (str(spec.get("method", method)).upper(), result.get("url", spec["url"]))


def _excerpt(result):
    """The answer's first characters on one line, or why there was none."""
    return re.sub(r"\s+", " ", (result.get("content") or result.get("msg") or "")[:EXCERPT_LENGTH])


def _outcome(spec, result, detail):
    return {"name": spec["name"], "result": result, "detail": detail}


def http_outcome(result):
    """The outcome of one read-only check (one item of the registered uri loop)."""
    check = result["item"]
    request = _request(check, result, "GET")
    if _skipped(result):
        return _outcome(check, "skipped", "check mode, %s not sent (not read-only)" % request)
    expected = int(check.get("status", 200))
    status = result.get("status", -1)
    status_ok = status == expected
    body_ok = "contains" not in check or check["contains"] in (result.get("content") or "")
    if status == -1:
        detail = "%s got no answer: %s" % (request, result.get("msg", ""))
    else:
        detail = "%s answered %s" % (request, status)
        if not status_ok:
            detail += ", expected %s" % expected
        if not body_ok:
            detail += ", body lacks %s" % json.dumps(check["contains"])
        if not (status_ok and body_ok):
            detail += "; body: %s" % _excerpt(result)
    return _outcome(check, "passed" if status_ok and body_ok else "failed", detail)


def write_outcome(result):
    """The outcome of one write probe (one item of the registered uri loop); its records are judged by db_outcome."""
    probe = result["item"]
    request = _request(probe, result, "POST")
    if _skipped(result):
        return _outcome(probe, "skipped",
                        "check mode, %s not sent (it would create a record), nor its db_checks run" % request)
    expected = int(probe.get("status", 201))
    status = result.get("status", -1)
    if status == -1:
        detail = "%s got no answer: %s" % (request, result.get("msg", ""))
    elif status == expected:
        created = result.get("json")
        created_id = created.get("id") if isinstance(created, Mapping) else None
        detail = "%s answered %s%s" % (request, status, "" if created_id is None else " (id %s)" % created_id)
    else:
        detail = "%s answered %s, expected %s; body: %s" % (request, status, expected, _excerpt(result))
    return _outcome(probe, "passed" if status == expected else "failed", detail)


def db_outcome(result, marker, database):
    """The outcome of one db_check: its query returns one row with one number, the count of matching rows."""
    probe, check = result["item"]
    if "query_result" not in result:
        return _outcome(check, "failed", "query failed: %s" % result.get("msg", ""))
    rows = result["query_result"]
    count = next(iter(rows[0].values())) if len(rows) == 1 and len(rows[0]) == 1 else None
    where = "database %s, marker %s" % (probe.get("database", database), marker)
    if not isinstance(count, Number):
        return _outcome(check, "failed", "the query must return one row with one number (SELECT count(*) ...), "
                                         "it returned %s (%s)" % (json.dumps(rows), where))
    return _outcome(check, "passed" if count == int(check["expect_rows"]) else "failed",
                    "counted %s, expected %s (%s)" % (count, check["expect_rows"], where))


def smoke_report(http, write, db, marker, database):
    """Every outcome in order (checks, probes, db_checks), the verdict, the report lines and the failure message.

    ``http``, ``write`` and ``db`` are the registered results of the role's three loops; db_checks skipped in
    check mode are left out, like their probes' records, which were never written.
    """
    outcomes = ([http_outcome(result) for result in http.get("results", [])]
                + [write_outcome(result) for result in write.get("results", [])]
                + [db_outcome(result, marker, database) for result in db.get("results", []) if not _skipped(result)])
    failures = [outcome for outcome in outcomes if outcome["result"] == "failed"]
    lines = "".join("%s %s: %s\n" % (outcome["result"].upper(), outcome["name"], outcome["detail"])
                    for outcome in outcomes).splitlines()
    message = "%d smoke check(s) failed (marker %s): %s" % (
        len(failures), marker, " | ".join("%s: %s" % (outcome["name"], outcome["detail"]) for outcome in failures))
    return {
        "outcomes": outcomes,
        "passed": not failures,
        "lines": lines or ["no smoke checks configured"],
        "message": message if failures else "",
    }


class FilterModule(object):

    def filters(self):
        return {"smoke_report": smoke_report}
