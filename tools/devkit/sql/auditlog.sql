-- AuditLog module (AuditLogDbContext): the tables EF Core's InitialAuditLog migration creates, as they
-- stand in the legacy database ClassifiedAds_AuditLog (classifiedads.md, "AuditLog"). The DbUp objects
-- of that database (CacheEntries and the schemaversions journal) are not EF's: see dbup/.
--
-- Schema-unqualified: run with search_path set to "public" (legacy) or "auditlog" (consolidated).
-- See product.sql for the "-- @section" convention.

-- @section tables
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

CREATE TABLE "IdempotentRequests" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "RequestType" text NOT NULL,
    "RequestId" text NOT NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

-- @section keys
ALTER TABLE "AuditLogEntries" ADD CONSTRAINT "PK_AuditLogEntries" PRIMARY KEY ("Id");
ALTER TABLE "IdempotentRequests" ADD CONSTRAINT "PK_IdempotentRequests" PRIMARY KEY ("Id");

-- @section seed
-- The AuditLog model has no HasData rows.

-- @section indexes
-- The only unique index in the whole application (a unique index, not a constraint, as EF creates it).
CREATE UNIQUE INDEX "IX_IdempotentRequests_RequestType_RequestId" ON "IdempotentRequests" ("RequestType", "RequestId");
