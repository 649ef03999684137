-- Notification module (NotificationDbContext): the tables EF Core's InitialNotification migration
-- creates, as they stand in the legacy database ClassifiedAds_Notification (classifiedads.md,
-- "Notification").
--
-- Schema-unqualified: run with search_path set to "public" (legacy) or "notification" (consolidated).
-- See product.sql for the "-- @section" convention.

-- @section tables
CREATE TABLE "EmailMessages" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL,
    "From" text NULL,
    "Tos" text NULL,
    "CCs" text NULL,
    "BCCs" text NULL,
    "Subject" text NULL,
    "Body" text NULL,
    "AttemptCount" integer NOT NULL,
    "MaxAttemptCount" integer NOT NULL,
    "NextAttemptDateTime" timestamp with time zone NULL,
    "ExpiredDateTime" timestamp with time zone NULL,
    "Log" text NULL,
    "SentDateTime" timestamp with time zone NULL,
    "CopyFromId" uuid NULL
);

-- Archived rows keep the Id of the live row they were copied from: no default.
CREATE TABLE "ArchivedEmailMessages" (
    "Id" uuid NOT NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL,
    "From" text NULL,
    "Tos" text NULL,
    "CCs" text NULL,
    "BCCs" text NULL,
    "Subject" text NULL,
    "Body" text NULL,
    "AttemptCount" integer NOT NULL,
    "MaxAttemptCount" integer NOT NULL,
    "NextAttemptDateTime" timestamp with time zone NULL,
    "ExpiredDateTime" timestamp with time zone NULL,
    "Log" text NULL,
    "SentDateTime" timestamp with time zone NULL,
    "CopyFromId" uuid NULL
);

CREATE TABLE "SmsMessages" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL,
    "Message" text NULL,
    "PhoneNumber" text NULL,
    "AttemptCount" integer NOT NULL,
    "MaxAttemptCount" integer NOT NULL,
    "NextAttemptDateTime" timestamp with time zone NULL,
    "ExpiredDateTime" timestamp with time zone NULL,
    "Log" text NULL,
    "SentDateTime" timestamp with time zone NULL,
    "CopyFromId" uuid NULL
);

-- Archived rows keep the Id of the live row they were copied from: no default.
CREATE TABLE "ArchivedSmsMessages" (
    "Id" uuid NOT NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL,
    "Message" text NULL,
    "PhoneNumber" text NULL,
    "AttemptCount" integer NOT NULL,
    "MaxAttemptCount" integer NOT NULL,
    "NextAttemptDateTime" timestamp with time zone NULL,
    "ExpiredDateTime" timestamp with time zone NULL,
    "Log" text NULL,
    "SentDateTime" timestamp with time zone NULL,
    "CopyFromId" uuid NULL
);

-- FileEntryId points into the Storage module (another database in the legacy layout): no FK.
CREATE TABLE "EmailMessageAttachments" (
    "Id" uuid NOT NULL DEFAULT (gen_random_uuid()),
    "EmailMessageId" uuid NOT NULL,
    "FileEntryId" uuid NOT NULL,
    "Name" text NULL,
    "RowVersion" bytea NULL,
    "CreatedDateTime" timestamp with time zone NOT NULL,
    "UpdatedDateTime" timestamp with time zone NULL
);

-- @section keys
ALTER TABLE "EmailMessages" ADD CONSTRAINT "PK_EmailMessages" PRIMARY KEY ("Id");
ALTER TABLE "ArchivedEmailMessages" ADD CONSTRAINT "PK_ArchivedEmailMessages" PRIMARY KEY ("Id");
ALTER TABLE "SmsMessages" ADD CONSTRAINT "PK_SmsMessages" PRIMARY KEY ("Id");
ALTER TABLE "ArchivedSmsMessages" ADD CONSTRAINT "PK_ArchivedSmsMessages" PRIMARY KEY ("Id");
ALTER TABLE "EmailMessageAttachments" ADD CONSTRAINT "PK_EmailMessageAttachments" PRIMARY KEY ("Id");

ALTER TABLE "EmailMessageAttachments" ADD CONSTRAINT "FK_EmailMessageAttachments_EmailMessages_EmailMessageId"
    FOREIGN KEY ("EmailMessageId") REFERENCES "EmailMessages" ("Id") ON DELETE CASCADE;

-- @section seed
-- The Notification model has no HasData rows.

-- @section indexes
-- The INCLUDE columns let the sender's "due messages" query run as an index-only scan.
CREATE INDEX "IX_EmailMessages_SentDateTime" ON "EmailMessages" ("SentDateTime")
    INCLUDE ("ExpiredDateTime", "AttemptCount", "MaxAttemptCount", "NextAttemptDateTime");
CREATE INDEX "IX_EmailMessages_CreatedDateTime" ON "EmailMessages" ("CreatedDateTime");
CREATE INDEX "IX_ArchivedEmailMessages_CreatedDateTime" ON "ArchivedEmailMessages" ("CreatedDateTime");
CREATE INDEX "IX_SmsMessages_SentDateTime" ON "SmsMessages" ("SentDateTime")
    INCLUDE ("ExpiredDateTime", "AttemptCount", "MaxAttemptCount", "NextAttemptDateTime");
CREATE INDEX "IX_SmsMessages_CreatedDateTime" ON "SmsMessages" ("CreatedDateTime");
CREATE INDEX "IX_ArchivedSmsMessages_CreatedDateTime" ON "ArchivedSmsMessages" ("CreatedDateTime");
CREATE INDEX "IX_EmailMessageAttachments_EmailMessageId" ON "EmailMessageAttachments" ("EmailMessageId");
