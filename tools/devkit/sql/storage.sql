-- Storage module (StorageDbContext): the tables EF Core's InitialStorage migration creates, as they
-- stand in the legacy database ClassifiedAds_Storage (classifiedads.md, "Storage"). The fork's later
-- InitialStorage also has OwnerId, ContentType, FileCategory and ExpiresAt on FileEntries; the legacy
-- state this project consolidates does not, so neither does this file.
--
-- Schema-unqualified: run with search_path set to "public" (legacy) or "storage" (consolidated).
-- See product.sql for the "-- @section" convention. OutboxMessages, ArchivedOutboxMessages and
-- AuditLogEntries repeat Product's tables because the application maps them in both DbContexts.

-- @section tables
CREATE TABLE "FileEntries" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "Name" text NULL,
    "Description" text NULL,
    "Size" bigint NOT NULL,
    "UploadedTime" timestamp with time zone NOT NULL,
    "FileName" text NULL,
    "FileLocation" text NULL,
    "Encrypted" boolean NOT NULL,
    "EncryptionKey" text NULL,
    "EncryptionIV" text NULL,
    "Archived" boolean NOT NULL,
    "ArchivedDate" timestamp with time zone NULL,
    "Deleted" boolean NOT NULL,
    "DeletedDate" timestamp with time zone NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

-- FileEntryId names a FileEntries row, but the model declares no relationship: no FK.
CREATE TABLE "DeletedFileEntries" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "FileEntryId" uuid NOT NULL,
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
ALTER TABLE "FileEntries" ADD CONSTRAINT "PK_FileEntries" PRIMARY KEY ("Id");
ALTER TABLE "DeletedFileEntries" ADD CONSTRAINT "PK_DeletedFileEntries" PRIMARY KEY ("Id");
ALTER TABLE "OutboxMessages" ADD CONSTRAINT "PK_OutboxMessages" PRIMARY KEY ("Id");
ALTER TABLE "ArchivedOutboxMessages" ADD CONSTRAINT "PK_ArchivedOutboxMessages" PRIMARY KEY ("Id");
ALTER TABLE "AuditLogEntries" ADD CONSTRAINT "PK_AuditLogEntries" PRIMARY KEY ("Id");

-- @section seed
-- The Storage model has no HasData rows.

-- @section indexes
CREATE INDEX "IX_OutboxMessages_Published_CreatedDateTime" ON "OutboxMessages" ("Published", "CreatedDateTime");
CREATE INDEX "IX_OutboxMessages_CreatedDateTime" ON "OutboxMessages" ("CreatedDateTime");
CREATE INDEX "IX_ArchivedOutboxMessages_CreatedDateTime" ON "ArchivedOutboxMessages" ("CreatedDateTime");
