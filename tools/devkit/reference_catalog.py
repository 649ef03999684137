"""The catalog the legacy ClassifiedAds databases must have, transcribed from the reference text.

Written by hand from ``classifiedads.md`` (tables, column order, types, nullability, defaults,
identity, keys, indexes), independently of ``devkit/sql/*.sql``: the tests compare what those
files build with this transcription, so a slip in either shows up as drift instead of being
copied into both.

The shape is the one :func:`devkit.catalog.read_schema` returns::

    {table: {"columns": [{"name", "type", "not_null", "default", "identity"}, ...],   # attnum order
             "primary_key": {"name", "columns"} | None,
             "foreign_keys": [{"name", "columns", "references", "ref_columns", "on_delete"}, ...],
             "indexes": [{"name", "unique", "method", "columns", "include", "predicate"}, ...],
             "other_constraints": [{"name", "type"}, ...]}}

Types are spelled as ``format_type()`` prints them, defaults as ``pg_get_expr()`` prints them
with the table's own schema on the search_path, ``identity`` is ``"by default"``, ``"always"``
or ``None``. Foreign keys and indexes are sorted by name; the primary key's index is not listed
among the indexes.
"""

from __future__ import annotations

import copy

UUID = "uuid"
TEXT = "text"
BOOL = "boolean"
INT = "integer"
BIGINT = "bigint"
BYTEA = "bytea"
TSTZ = "timestamp with time zone"
TS = "timestamp without time zone"
NEW_UUID = "gen_random_uuid()"


def _col(name, type_, not_null=False, default=None, identity=None):
    return {"name": name, "type": type_, "not_null": not_null, "default": default, "identity": identity}


def _id(default=NEW_UUID):
    return _col("Id", UUID, True, default)


# Every Entity<Guid> ends with these (ClassifiedAds.Domain/Entities/Entity.cs). RowVersion is
# declared rowVersion: true but PostgreSQL has no rowversion type: a plain NULLable bytea.
_ENTITY_TAIL = [
    _col("RowVersion", BYTEA),
    _col("CreatedDateTime", TSTZ, True),
    _col("UpdatedDateTime", TSTZ),
]


def _fk(name, column, references, on_delete="CASCADE"):
    return {"name": name, "columns": [column], "references": references, "ref_columns": ["Id"],
            "on_delete": on_delete}


def _ix(name, columns, include=(), unique=False):
    return {"name": name, "unique": unique, "method": "btree", "columns": list(columns),
            "include": list(include), "predicate": None}


def _table(name, columns, foreign_keys=(), indexes=(), pk_column="Id", pk_name=None):
    return name, {
        "columns": columns,
        "primary_key": {"name": pk_name or f"PK_{name}", "columns": [pk_column]},
        "foreign_keys": sorted(foreign_keys, key=lambda fk: fk["name"]),
        "indexes": sorted(indexes, key=lambda ix: ix["name"]),
        "other_constraints": [],
    }


def _outbox_columns(id_default):
    return [
        _id(id_default),
        *_ENTITY_TAIL,
        _col("EventType", TEXT),
        _col("TriggeredById", UUID, True),
        _col("ObjectId", TEXT),
        _col("Payload", TEXT),
        _col("Published", BOOL, True),
        _col("ActivityId", TEXT),
    ]


def _outbox_tables():
    return [
        _table("OutboxMessages", _outbox_columns(NEW_UUID), indexes=[
            _ix("IX_OutboxMessages_Published_CreatedDateTime", ["Published", "CreatedDateTime"]),
            _ix("IX_OutboxMessages_CreatedDateTime", ["CreatedDateTime"]),
        ]),
        _table("ArchivedOutboxMessages", _outbox_columns(None), indexes=[
            _ix("IX_ArchivedOutboxMessages_CreatedDateTime", ["CreatedDateTime"]),
        ]),
    ]


def _audit_log_entries():
    return _table("AuditLogEntries", [
        _id(),
        _col("UserId", UUID, True),
        _col("Action", TEXT),
        _col("ObjectId", TEXT),
        _col("Log", TEXT),
        *_ENTITY_TAIL,
    ])


def _email_columns(id_default):
    return [
        _id(id_default),
        *_ENTITY_TAIL,
        _col("From", TEXT),
        _col("Tos", TEXT),
        _col("CCs", TEXT),
        _col("BCCs", TEXT),
        _col("Subject", TEXT),
        _col("Body", TEXT),
        *_delivery_columns(),
    ]


def _sms_columns(id_default):
    return [
        _id(id_default),
        *_ENTITY_TAIL,
        _col("Message", TEXT),
        _col("PhoneNumber", TEXT),
        *_delivery_columns(),
    ]


def _delivery_columns():
    return [
        _col("AttemptCount", INT, True),
        _col("MaxAttemptCount", INT, True),
        _col("NextAttemptDateTime", TSTZ),
        _col("ExpiredDateTime", TSTZ),
        _col("Log", TEXT),
        _col("SentDateTime", TSTZ),
        _col("CopyFromId", UUID),
    ]


_SENT_INCLUDE = ["ExpiredDateTime", "AttemptCount", "MaxAttemptCount", "NextAttemptDateTime"]


def _build_modules():
    product = dict([
        _table("Products", [
            _id(), _col("Code", TEXT), _col("Name", TEXT), _col("Description", TEXT), *_ENTITY_TAIL,
        ]),
        *_outbox_tables(),
        _audit_log_entries(),
    ])

    identity = dict([
        _table("Users", [
            _id(),
            _col("UserName", TEXT),
            _col("NormalizedUserName", TEXT),
            _col("Email", TEXT),
            _col("NormalizedEmail", TEXT),
            _col("EmailConfirmed", BOOL, True),
            _col("PasswordHash", TEXT),
            _col("PhoneNumber", TEXT),
            _col("PhoneNumberConfirmed", BOOL, True),
            _col("TwoFactorEnabled", BOOL, True),
            _col("ConcurrencyStamp", TEXT),
            _col("SecurityStamp", TEXT),
            _col("LockoutEnabled", BOOL, True),
            _col("LockoutEnd", TSTZ),
            _col("AccessFailedCount", INT, True),
            _col("Auth0UserId", TEXT),
            _col("AzureAdB2CUserId", TEXT),
            *_ENTITY_TAIL,
        ]),
        _table("Roles", [
            _id(), _col("Name", TEXT), _col("NormalizedName", TEXT), _col("ConcurrencyStamp", TEXT), *_ENTITY_TAIL,
        ]),
        _table("UserRoles", [_id(), _col("UserId", UUID, True), _col("RoleId", UUID, True), *_ENTITY_TAIL],
               foreign_keys=[_fk("FK_UserRoles_Users_UserId", "UserId", "Users"),
                             _fk("FK_UserRoles_Roles_RoleId", "RoleId", "Roles")],
               indexes=[_ix("IX_UserRoles_UserId", ["UserId"]), _ix("IX_UserRoles_RoleId", ["RoleId"])]),
        _table("UserClaims", [_id(), _col("Type", TEXT), _col("Value", TEXT), _col("UserId", UUID), *_ENTITY_TAIL],
               foreign_keys=[_fk("FK_UserClaims_Users_UserId", "UserId", "Users")],
               indexes=[_ix("IX_UserClaims_UserId", ["UserId"])]),
        _table("RoleClaims", [_id(), _col("Type", TEXT), _col("Value", TEXT), _col("RoleId", UUID), *_ENTITY_TAIL],
               foreign_keys=[_fk("FK_RoleClaims_Roles_RoleId", "RoleId", "Roles")],
               indexes=[_ix("IX_RoleClaims_RoleId", ["RoleId"])]),
        _table("UserLogins", [
            _id(), _col("UserId", UUID, True), _col("LoginProvider", TEXT), _col("ProviderKey", TEXT),
            _col("ProviderDisplayName", TEXT), *_ENTITY_TAIL,
        ], foreign_keys=[_fk("FK_UserLogins_Users_UserId", "UserId", "Users")],
            indexes=[_ix("IX_UserLogins_UserId", ["UserId"])]),
        _table("UserTokens", [
            _id(), _col("UserId", UUID, True), _col("LoginProvider", TEXT), _col("TokenName", TEXT),
            _col("TokenValue", TEXT), *_ENTITY_TAIL,
        ], foreign_keys=[_fk("FK_UserTokens_Users_UserId", "UserId", "Users")],
            indexes=[_ix("IX_UserTokens_UserId", ["UserId"])]),
        _table("DataProtectionKeys", [
            _col("Id", INT, True, None, "by default"), _col("FriendlyName", TEXT), _col("Xml", TEXT),
        ]),
    ])

    storage = dict([
        _table("FileEntries", [
            _id(),
            _col("Name", TEXT),
            _col("Description", TEXT),
            _col("Size", BIGINT, True),
            _col("UploadedTime", TSTZ, True),
            _col("FileName", TEXT),
            _col("FileLocation", TEXT),
            _col("Encrypted", BOOL, True),
            _col("EncryptionKey", TEXT),
            _col("EncryptionIV", TEXT),
            _col("Archived", BOOL, True),
            _col("ArchivedDate", TSTZ),
            _col("Deleted", BOOL, True),
            _col("DeletedDate", TSTZ),
            *_ENTITY_TAIL,
        ]),
        _table("DeletedFileEntries", [_id(), _col("FileEntryId", UUID, True), *_ENTITY_TAIL]),
        *_outbox_tables(),
        _audit_log_entries(),
    ])

    notification = dict([
        _table("EmailMessages", _email_columns(NEW_UUID), indexes=[
            _ix("IX_EmailMessages_SentDateTime", ["SentDateTime"], include=_SENT_INCLUDE),
            _ix("IX_EmailMessages_CreatedDateTime", ["CreatedDateTime"]),
        ]),
        _table("ArchivedEmailMessages", _email_columns(None), indexes=[
            _ix("IX_ArchivedEmailMessages_CreatedDateTime", ["CreatedDateTime"]),
        ]),
        _table("SmsMessages", _sms_columns(NEW_UUID), indexes=[
            _ix("IX_SmsMessages_SentDateTime", ["SentDateTime"], include=_SENT_INCLUDE),
            _ix("IX_SmsMessages_CreatedDateTime", ["CreatedDateTime"]),
        ]),
        _table("ArchivedSmsMessages", _sms_columns(None), indexes=[
            _ix("IX_ArchivedSmsMessages_CreatedDateTime", ["CreatedDateTime"]),
        ]),
        _table("EmailMessageAttachments", [
            _id(), _col("EmailMessageId", UUID, True), _col("FileEntryId", UUID, True), _col("Name", TEXT),
            *_ENTITY_TAIL,
        ], foreign_keys=[_fk("FK_EmailMessageAttachments_EmailMessages_EmailMessageId", "EmailMessageId",
                             "EmailMessages")],
            indexes=[_ix("IX_EmailMessageAttachments_EmailMessageId", ["EmailMessageId"])]),
    ])

    auditlog = dict([
        _audit_log_entries(),
        _table("IdempotentRequests", [
            _id(), _col("RequestType", TEXT, True), _col("RequestId", TEXT, True), *_ENTITY_TAIL,
        ], indexes=[_ix("IX_IdempotentRequests_RequestType_RequestId", ["RequestType", "RequestId"], unique=True)]),
    ])

    configuration = dict([
        _table("ConfigurationEntries", [
            _id(), _col("Key", TEXT), _col("Value", TEXT), _col("Description", TEXT),
            _col("IsSensitive", BOOL, True), *_ENTITY_TAIL,
        ]),
        _table("LocalizationEntries", [
            _id(), _col("Name", TEXT), _col("Value", TEXT), _col("Culture", TEXT), _col("Description", TEXT),
            *_ENTITY_TAIL,
        ]),
    ])

    return {"product": product, "identity": identity, "storage": storage, "notification": notification,
            "auditlog": auditlog, "configuration": configuration}


_MODULES = _build_modules()

# EF Core's history table (Npgsql HistoryRepository), in "public" of every database that EF migrates.
_EF_HISTORY = dict([
    _table("__EFMigrationsHistory", [
        _col("MigrationId", "character varying(150)", True),
        _col("ProductVersion", "character varying(32)", True),
    ], pk_column="MigrationId"),
])

# DbUp's objects: the application's one script and DbUp's PostgresqlTableJournal.
_DBUP = dict([
    _table("CacheEntries", [
        _col("Id", "character varying(449)", True),
        _col("Value", BYTEA, True),
        _col("ExpiresAtTime", TSTZ, True),
        _col("SlidingExpirationInSeconds", BIGINT),
        _col("AbsoluteExpiration", TSTZ),
    ], indexes=[_ix("Index_ExpiresAtTime", ["ExpiresAtTime"])], pk_name="CacheEntries_pkey"),
    _table("schemaversions", [
        _col("schemaversionsid", INT, True, "nextval('schemaversions_schemaversionsid_seq'::regclass)"),
        _col("scriptname", "character varying(255)", True),
        _col("applied", TS, True),
    ], pk_column="schemaversionsid", pk_name="PK_schemaversions_Id"),
])

MODULE_NAMES = tuple(_MODULES)


def module_tables(module: str) -> dict:
    """The tables of one module (``"product"``, ...) as the legacy database holds them."""
    return copy.deepcopy(_MODULES[module])


def ef_history_table() -> dict:
    """``__EFMigrationsHistory`` alone."""
    return copy.deepcopy(_EF_HISTORY)


def dbup_tables() -> dict:
    """DbUp's ``CacheEntries`` and ``schemaversions``."""
    return copy.deepcopy(_DBUP)


def legacy_database(module: str) -> dict:
    """Everything in ``public`` of the legacy ``ClassifiedAds_<Module>`` database."""
    tables = module_tables(module)
    tables.update(ef_history_table())
    if module == "auditlog":  # DbUp runs against the AuditLog connection string in the legacy Migrator
        tables.update(dbup_tables())
    return tables
