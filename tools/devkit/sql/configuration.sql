-- Configuration module (ConfigurationDbContext): the tables EF Core's InitialConfiguration migration
-- creates, as they stand in the legacy database ClassifiedAds_Configuration (classifiedads.md,
-- "Configuration").
--
-- Schema-unqualified: run with search_path set to "public" (legacy) or "configuration"
-- (consolidated). See product.sql for the "-- @section" convention.

-- @section tables
-- "Key" is not unique: the application declares no index on it.
CREATE TABLE "ConfigurationEntries" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "Key" text NULL,
    "Value" text NULL,
    "Description" text NULL,
    "IsSensitive" boolean NOT NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

CREATE TABLE "LocalizationEntries" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "Name" text NULL,
    "Value" text NULL,
    "Culture" text NULL,
    "Description" text NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

-- @section keys
ALTER TABLE "ConfigurationEntries" ADD CONSTRAINT "PK_ConfigurationEntries" PRIMARY KEY ("Id");
ALTER TABLE "LocalizationEntries" ADD CONSTRAINT "PK_LocalizationEntries" PRIMARY KEY ("Id");

-- @section seed
-- HasData rows. The reference abbreviates the LocalizationEntries ids (29a4aacb-…, 5a262d8a-…); the
-- full values are the ones the fork's InitialConfiguration migration inserts.
INSERT INTO "ConfigurationEntries" ("Id", "Key", "Value", "Description", "IsSensitive", "CreatedDateTime", "UpdatedDateTime")
VALUES ('8a051aa5-bcd1-ea11-b098-ac728981bd15', 'SecurityHeaders:Test-Read-From-SqlServer', 'this-is-read-from-sqlserver',
        NULL, false, '0001-01-01 00:00:00+00', NULL);

INSERT INTO "LocalizationEntries" ("Id", "Name", "Value", "Culture", "Description", "CreatedDateTime", "UpdatedDateTime") VALUES
    ('29a4aacb-4ddf-4f85-aced-c5283a8bdd7f', 'Test', 'Test', 'en-US', NULL, '0001-01-01 00:00:00+00', NULL),
    ('5a262d8a-b0d9-45d3-8c0e-18b2c882b9fe', 'Test', 'Kiem Tra', 'vi-VN', NULL, '0001-01-01 00:00:00+00', NULL);

-- @section indexes
-- The Configuration model declares no secondary index.
