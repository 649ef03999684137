"""Names the scenarios' testinfra checks share (importable because pytest puts molecule/ on sys.path
for its conftest.py)."""

from __future__ import annotations

import json

# The roles' defaults (roles/consolidation/defaults/main.yml): the scenarios keep them.
RUN_ROOT = "/var/lib/classifiedads-consolidation/runs"
BACKUP_ROOT = "/var/backups/classifiedads-consolidation"
TARGET = "ClassifiedAds"
MODULES = ["AuditLog", "Configuration", "Identity", "Notification", "Product", "Storage"]
SCHEMAS = [module.lower() for module in MODULES]
LEGACY = [f"ClassifiedAds_{module}" for module in MODULES]


def read_json(host, path):
    return json.loads(host.file(path).content_string)
