-- Product module (ProductDbContext): the tables EF Core's InitialProduct migration creates, as they
-- stand in the legacy database ClassifiedAds_Product (classifiedads.md, "Product").
--
-- Schema-unqualified on purpose: the caller sets search_path to "public" to build the legacy
-- database, or to "product" when the stand-in migrator applies 20260201104447_InitialProduct.
-- "-- @section" lines split the file for devkit.ddl: the legacy builder loads its bulk data between
-- "seed" and "keys" and so builds keys and indexes once over the loaded rows; the migrator runs the
-- sections in EF's order (tables, keys, seed, indexes). Run top to bottom, the file is valid as is.

-- @section tables
CREATE TABLE "Products" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "Code" text NULL,
    "Name" text NULL,
    "Description" text NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

CREATE TABLE "OutboxMessages" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL,
    "EventType" text NULL,
    "TriggeredById" uuid NOT NULL,
    "ObjectId" text NULL,
    "Payload" text NULL,
    "Published" boolean NOT NULL,
    "ActivityId" text NULL
);

-- Archived rows keep the Id of the live row they were copied from: no default.
CREATE TABLE "ArchivedOutboxMessages" (
    "Id" uuid NOT NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL,
    "EventType" text NULL,
    "TriggeredById" uuid NOT NULL,
    "ObjectId" text NULL,
    "Payload" text NULL,
    "Published" boolean NOT NULL,
    "ActivityId" text NULL
);

CREATE TABLE "AuditLogEntries" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "UserId" uuid NOT NULL,
    "Action" text NULL,
    "ObjectId" text NULL,
    "Log" text NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

-- @section keys
ALTER TABLE "Products" ADD CONSTRAINT "PK_Products" PRIMARY KEY ("Id");
ALTER TABLE "OutboxMessages" ADD CONSTRAINT "PK_OutboxMessages" PRIMARY KEY ("Id");
ALTER TABLE "ArchivedOutboxMessages" ADD CONSTRAINT "PK_ArchivedOutboxMessages" PRIMARY KEY ("Id");
ALTER TABLE "AuditLogEntries" ADD CONSTRAINT "PK_AuditLogEntries" PRIMARY KEY ("Id");

-- @section seed
-- HasData rows. The reference abbreviates the ids (6672e891-…, cc9d7eca-…); the full values are the
-- ones the fork's InitialProduct migration inserts. EF writes default(DateTimeOffset), year 1, UTC.
INSERT INTO "Products" ("Id", "Code", "Name", "Description", "CreatedDateTime", "UpdatedDateTime") VALUES
    ('6672e891-0d94-4620-b38a-dbc5b02da9f7', 'TEST', 'Test', 'Description', '0001-01-01 00:00:00+00', NULL),
    ('cc9d7eca-6428-4e6d-b40b-2c8d93ab7347', 'PD001', 'Iphone X', 'Iphone X', '0001-01-01 00:00:00+00', NULL);

-- @section indexes
CREATE INDEX "IX_OutboxMessages_Published_CreatedDateTime" ON "OutboxMessages" ("Published", "CreatedDateTime");
CREATE INDEX "IX_OutboxMessages_CreatedDateTime" ON "OutboxMessages" ("CreatedDateTime");
CREATE INDEX "IX_ArchivedOutboxMessages_CreatedDateTime" ON "ArchivedOutboxMessages" ("CreatedDateTime");
