"""Names the tests share: one definition each, imported as ``from constants import ...``."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
APP_FIXTURE = FIXTURES / "classifiedads_app"

# A name that breaks any SQL built by pasting it between quotes.
HOSTILE = 'a"; DROP TABLE x; --'

# The six ClassifiedAds modules and the schemas they become, in the plan's order.
MODULE_SCHEMAS = [("Product", "product"), ("Identity", "identity"), ("Storage", "storage"),
                  ("Notification", "notification"), ("AuditLog", "auditlog"), ("Configuration", "configuration")]
# The module names as the application's configuration keys list them (sorted).
MODULE_NAMES = sorted(name for name, _schema in MODULE_SCHEMAS)
# The default mapping: one legacy database per module.
MODULE_MAPPINGS = [{"name": name, "source_database": "ClassifiedAds_" + name, "schema": schema}
                   for name, schema in MODULE_SCHEMAS]
