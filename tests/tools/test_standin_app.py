"""Configuration resolution of the stand-in WebAPI (tools/standin_app): pure functions, no server."""

from __future__ import annotations

import json

import pytest
from standin_app import harness
from standin_app.config import ConfigurationError, load_configuration, resolve
from standin_app.server import RequestError, validate_product

SHARED = "Host=db;Port=5432;Database=ClassifiedAds;Username=app;Password='S3cret;pw'"
PRODUCT = "Host=db;Port=5432;Database=ClassifiedAds_Product;Username=app;Password=ProductPw"
AUDITLOG = "Host=audit-db;Port=5433;Database=ClassifiedAds_AuditLog;Username=audit;Passfile=/run/pgpass"


def write(path, document):
    path.write_text(json.dumps(document))
    return str(path)


def stores(config):
    return {key: (store.connect_kwargs["dbname"], store.schema) for key, store in config.stores.items()}


# -- which layout ----------------------------------------------------------------------------------

def test_per_module_strings_are_the_legacy_layout(tmp_path):
    path = write(tmp_path / "appsettings.json", harness.appsettings(modules={"Product": PRODUCT, "AuditLog": AUDITLOG}))
    config = resolve(load_configuration(path, {}))
    assert config.layout == "legacy"
    assert stores(config) == {"product": ("ClassifiedAds_Product", "public"),
                              "auditlog": ("ClassifiedAds_AuditLog", "public")}
    auditlog = config.stores["auditlog"].connect_kwargs
    assert (auditlog["host"], auditlog["port"], auditlog["user"], auditlog["passfile"]) == (
        "audit-db", 5433, "audit", "/run/pgpass")
    assert config.stores["product"].source == f"Modules:Product:ConnectionStrings:Default in {path}"


def test_the_shared_string_is_the_consolidated_layout_and_wins_over_module_strings(tmp_path):
    document = harness.appsettings(shared=SHARED, modules={"Product": PRODUCT, "AuditLog": AUDITLOG})
    config = resolve(load_configuration(write(tmp_path / "appsettings.json", document), {}))
    assert config.layout == "consolidated"
    assert stores(config) == {"product": ("ClassifiedAds", "product"), "auditlog": ("ClassifiedAds", "auditlog")}


def test_an_empty_shared_string_does_not_count(tmp_path):
    document = harness.appsettings(shared="", modules={"Product": PRODUCT, "AuditLog": AUDITLOG})
    assert resolve(load_configuration(write(tmp_path / "appsettings.json", document), {})).layout == "legacy"
    document["ConnectionStrings"]["Default"] = None  # JSON null reads as empty, as in .NET
    assert resolve(load_configuration(write(tmp_path / "appsettings.json", document), {})).layout == "legacy"


def test_a_missing_module_string_names_both_keys(tmp_path):
    path = write(tmp_path / "appsettings.json", harness.appsettings(modules={"Product": PRODUCT}))
    with pytest.raises(ConfigurationError) as raised:
        resolve(load_configuration(path, {}))
    assert "Modules:AuditLog:ConnectionStrings:Default" in str(raised.value)
    assert "ConnectionStrings:Default" in str(raised.value)


def test_nothing_configured_is_an_error():
    with pytest.raises(ConfigurationError, match="Product module"):
        resolve(load_configuration(None, {"PATH": "/usr/bin"}))


# -- .NET precedence: files, overlay, environment -------------------------------------------------------

def test_environment_variables_override_the_file_like_dotnet(tmp_path):
    path = write(tmp_path / "appsettings.json", harness.appsettings(modules={"Product": PRODUCT, "AuditLog": AUDITLOG}))
    environ = {"Modules__Product__ConnectionStrings__Default": PRODUCT.replace("ClassifiedAds_Product", "Other")}
    config = resolve(load_configuration(path, environ))
    assert stores(config)["product"] == ("Other", "public")
    assert config.stores["product"].source == "environment variable Modules__Product__ConnectionStrings__Default"


def test_a_shared_string_in_the_environment_switches_to_the_consolidated_layout(tmp_path):
    # The cutover of a Compose deployment: .env gains ConnectionStrings__Default, appsettings.json is unchanged.
    path = write(tmp_path / "appsettings.json", harness.appsettings(modules={"Product": PRODUCT, "AuditLog": AUDITLOG}))
    config = resolve(load_configuration(path, {"CONNECTIONSTRINGS__DEFAULT": SHARED}))
    assert config.layout == "consolidated"
    assert config.stores["auditlog"].source == "environment variable CONNECTIONSTRINGS__DEFAULT"


def test_environment_alone_is_enough():
    config = resolve(load_configuration(None, {"ConnectionStrings__Default": SHARED}))
    assert stores(config) == {"product": ("ClassifiedAds", "product"), "auditlog": ("ClassifiedAds", "auditlog")}


def test_keys_are_case_insensitive_and_the_environment_overlay_applies(tmp_path):
    write(tmp_path / "appsettings.json", {"modules": {"product": {"connectionstrings": {"default": PRODUCT}},
                                                      "AUDITLOG": {"ConnectionStrings": {"Default": AUDITLOG}}}})
    write(tmp_path / "appsettings.Staging.json", {"ConnectionStrings": {"Default": SHARED}})
    path = str(tmp_path / "appsettings.json")
    assert resolve(load_configuration(path, {})).layout == "legacy"
    assert resolve(load_configuration(path, {"ASPNETCORE_ENVIRONMENT": "Staging"})).layout == "consolidated"
    assert resolve(load_configuration(path, {"DOTNET_ENVIRONMENT": "Staging"})).layout == "consolidated"


def test_dotnet_json_comments_and_trailing_commas_are_read(tmp_path):
    path = tmp_path / "appsettings.json"
    shared = json.dumps(SHARED)
    path.write_text(f'{{\n  // shared since the consolidation\n  "ConnectionStrings": {{"Default": {shared},}},\n}}\n')
    assert resolve(load_configuration(str(path), {})).layout == "consolidated"


def test_a_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_configuration(str(tmp_path / "absent.json"), {})


# -- secrets ------------------------------------------------------------------------------------------

def test_the_public_view_never_holds_a_password(tmp_path):
    document = harness.appsettings(modules={"Product": PRODUCT, "AuditLog": AUDITLOG})
    config = resolve(load_configuration(write(tmp_path / "appsettings.json", document), {}))
    view = json.dumps(config.public_view())
    assert "ProductPw" not in view and "password" not in view.lower()
    assert json.loads(view)["stores"]["auditlog"] == {
        "module": "AuditLog", "host": "audit-db", "port": 5433, "database": "ClassifiedAds_AuditLog",
        "username": "audit", "schema": "public", "table": "AuditLogEntries",
        "connection_string_from": f"Modules:AuditLog:ConnectionStrings:Default in {tmp_path / 'appsettings.json'}"}
    assert config.passwords() == ["ProductPw"]


@pytest.mark.parametrize("text", ["Host=db;Database=x;Password=S3cret;pw", "Host=db;Database=x;Password=S3cret;pw=1"])
def test_an_invalid_string_names_its_source_not_a_piece_of_its_password(text):
    # An unquoted ';' splits the password: the parser then quotes the rest, which must not be shown.
    with pytest.raises(ConfigurationError) as raised:
        resolve(load_configuration(None, {"ConnectionStrings__Default": text}))
    assert str(raised.value).startswith("environment variable ConnectionStrings__Default: connection string: ")
    assert "S3cret" not in str(raised.value) and "pw" not in str(raised.value)


def test_the_application_name_defaults_to_the_standin():
    config = resolve(load_configuration(None, {"ConnectionStrings__Default": SHARED}))
    assert config.stores["product"].connect_kwargs["application_name"] == "classifiedads-standin-webapi"
    config = resolve(load_configuration(None, {"ConnectionStrings__Default": SHARED + ";Application Name=probe"}))
    assert config.stores["product"].connect_kwargs["application_name"] == "probe"


# -- request bodies -----------------------------------------------------------------------------------

def test_a_product_needs_a_code_and_strings():
    assert validate_product({"code": "C1", "name": "N", "extra": 1}) == {"code": "C1", "name": "N", "description": None}
    for body, message in (([], "JSON object"), ({"name": "N"}, "'code' is required"),
                          ({"code": "C", "name": 5}, "'name' must be a string")):
        with pytest.raises(RequestError, match=message) as raised:
            validate_product(body)
        assert raised.value.status == 400


# -- harness ------------------------------------------------------------------------------------------

def test_harness_builds_the_applications_settings_shapes():
    prefix = "Host=h;Port=5;Database=D;Username=u;"
    assert harness.connection_string("h", 5, "D", "u", password="p") == prefix + "Password=p"
    assert harness.connection_string("h", 5, "D", "u", passfile="/f") == prefix + "Passfile=/f"
    quoted = harness.connection_string("h", 5, "D", "u", password="it's;x")
    assert quoted == prefix + "Password='it''s;x'"
    assert resolve(load_configuration(None, {"ConnectionStrings__Default": quoted})).passwords() == ["it's;x"]
    assert harness.appsettings(shared="S")["ConnectionStrings"] == {"Default": "S"}
    assert harness.appsettings(modules={"Product": "P"})["Modules"] == {
        "Product": {"ConnectionStrings": {"Default": "P"}}}
    env = harness.environment({"ConnectionStrings__Default": "S"}, base={"PATH": "/bin", "Modules__X": "leak"})
    assert env == {"PATH": "/bin", "PYTHONPATH": str(harness.TOOLS_DIR), "ConnectionStrings__Default": "S"}
