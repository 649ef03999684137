"""Where the stand-in WebAPI finds its databases: pure functions of the settings files and environment.

.NET's configuration, as ``WebApplication.CreateBuilder`` layers it (later sources win):

1. ``appsettings.json`` (``--appsettings PATH``), then ``appsettings.<environment>.json`` beside it,
   the environment being ``ASPNETCORE_ENVIRONMENT`` or ``DOTNET_ENVIRONMENT`` (default ``Production``);
2. every environment variable, ``__`` standing for ``:`` (``ConnectionStrings__Default``,
   ``Modules__Product__ConnectionStrings__Default``).

Keys are case-insensitive. The file reading, the Npgsql connection string parser and the
errors are the stand-in migrator's (:mod:`devkit.migrator`), so both stand-ins read settings the
same way.

Which layout the application runs in follows from the shape that is present, as in the two
versions of ClassifiedAds: a non-empty top-level ``ConnectionStrings:Default`` is the
consolidated application (every module's ``ConnectionStrings.Default`` is overwritten with it and
each DbContext uses its own schema; per-module keys are then ignored), otherwise each module reads
``Modules:<Module>:ConnectionStrings:Default`` and its tables live in ``public`` of its own database.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from devkit.migrator import ConfigurationError, _flatten, _read_json, connect_kwargs, parse_connection_string

APPLICATION_NAME = "classifiedads-standin-webapi"
SHARED_KEY = "ConnectionStrings:Default"
MODULE_KEY = "Modules:{module}:ConnectionStrings:Default"
LEGACY_SCHEMA = "public"

__all__ = ["AppConfig", "ConfigurationError", "Setting", "Store", "STORES", "load_configuration", "resolve"]


@dataclasses.dataclass(frozen=True)
class StoreSpec:
    """One module the stand-in touches: its name, its schema after consolidation, its table."""

    key: str
    module: str
    schema: str
    table: str


STORES = (StoreSpec("product", "Product", "product", "Products"),
          StoreSpec("auditlog", "AuditLog", "auditlog", "AuditLogEntries"))


class Setting(NamedTuple):
    value: str
    source: str  # "Key in /path/appsettings.json" or "environment variable NAME"


@dataclasses.dataclass(frozen=True)
class Store:
    """Where one module's table lives: psycopg2 arguments (may hold the password) and the schema."""

    spec: StoreSpec
    connect_kwargs: dict
    schema: str
    source: str

    def public_view(self) -> dict:
        """Everything about the store except secrets: for /api/whereami and the startup log."""
        return {"module": self.spec.module, "host": self.connect_kwargs["host"],
                "port": self.connect_kwargs.get("port", 5432), "database": self.connect_kwargs["dbname"],
                "username": self.connect_kwargs.get("user"), "schema": self.schema, "table": self.spec.table,
                "connection_string_from": self.source}


@dataclasses.dataclass(frozen=True)
class AppConfig:
    layout: str  # "legacy" or "consolidated"
    stores: dict  # StoreSpec.key -> Store

    def public_view(self) -> dict:
        return {"layout": self.layout, "stores": {key: store.public_view() for key, store in self.stores.items()}}

    def passwords(self) -> list[str]:
        """Every password the configuration holds, to scrub them from any message."""
        return sorted({store.connect_kwargs["password"] for store in self.stores.values()
                       if store.connect_kwargs.get("password")})


def load_configuration(appsettings: str | None, environ: Mapping[str, str]) -> dict[str, Setting]:
    """Flattened configuration, keys lower-cased (``modules:product:connectionstrings:default``)."""
    configuration: dict[str, Setting] = {}
    if appsettings is not None:
        for path in settings_files(Path(appsettings), environ):
            for key, value in _flatten(_read_json(path)).items():
                configuration[key] = Setting(value, f"{_display_key(key)} in {path}")
    for name, value in environ.items():
        key = name.replace("__", ":").lower()
        configuration[key] = Setting(value, f"environment variable {name}")
    return configuration


def settings_files(path: Path, environ: Mapping[str, str]) -> list[Path]:
    """``appsettings.json`` and, when present, its overlay for the hosting environment."""
    if not path.is_file():
        raise ConfigurationError(f"settings file {path} does not exist")
    environment = environ.get("ASPNETCORE_ENVIRONMENT") or environ.get("DOTNET_ENVIRONMENT") or "Production"
    overlay = path.with_name(f"{path.stem}.{environment}{path.suffix}")
    return [path, overlay] if overlay.is_file() else [path]


def resolve(configuration: Mapping[str, Setting]) -> AppConfig:
    """The layout and each store's connection and schema, decided by the shape that is present."""
    shared = configuration.get(SHARED_KEY.lower())
    if shared is not None and shared.value.strip():
        kwargs = _connect_kwargs(shared)
        stores = {spec.key: Store(spec, dict(kwargs), spec.schema, shared.source) for spec in STORES}
        return AppConfig("consolidated", stores)
    stores = {}
    for spec in STORES:
        key = MODULE_KEY.format(module=spec.module)
        setting = configuration.get(key.lower())
        if setting is None or not setting.value.strip():
            raise ConfigurationError(f"no connection string for the {spec.module} module: set {key} (one database "
                                     f"per module) or {SHARED_KEY} (one database, a schema per module)")
        stores[spec.key] = Store(spec, _connect_kwargs(setting), LEGACY_SCHEMA, setting.source)
    return AppConfig("legacy", stores)


def _connect_kwargs(setting: Setting) -> dict:
    try:
        settings = parse_connection_string(setting.value)
        return connect_kwargs({"Application Name": APPLICATION_NAME, **settings})
    except ConfigurationError as exc:
        # The parser quotes the text it could not read, which can be a piece of a password with an
        # unquoted ';' in it: name the source, not the text.
        # (Outside the f-string: the container's Python is bookworm's 3.11, without PEP 701 quoting.)
        redacted = re.sub(r"'[^']*'", "'...'", str(exc))
        raise ConfigurationError(f"{setting.source}: {redacted}") from None


def _display_key(key: str) -> str:
    """``modules:product:connectionstrings:default`` -> the spelling used in messages."""
    known = {SHARED_KEY.lower(): SHARED_KEY}
    known.update({MODULE_KEY.format(module=spec.module).lower(): MODULE_KEY.format(module=spec.module)
                  for spec in STORES})
    return known.get(key, key)
