-- ClassifiedAds.Migrator/DbUp/PostgresqlDistributedCache/0001-CreateTables.sql: the one DbUp script
-- of the application, journaled as
-- "ClassifiedAds.Migrator.DbUp.PostgresqlDistributedCache.0001-CreateTables.sql". Unqualified names
-- land in the connection's default schema (public). The unnamed primary key is "CacheEntries_pkey".
CREATE TABLE IF NOT EXISTS "CacheEntries" (
	"Id" VARCHAR(449) NOT NULL PRIMARY KEY,
	"Value" BYTEA NOT NULL,
	"ExpiresAtTime" TIMESTAMPTZ NOT NULL,
	"SlidingExpirationInSeconds" BIGINT NULL,
	"AbsoluteExpiration" TIMESTAMPTZ NULL
);

CREATE INDEX IF NOT EXISTS "Index_ExpiresAtTime" ON "CacheEntries" ("ExpiresAtTime" ASC);
