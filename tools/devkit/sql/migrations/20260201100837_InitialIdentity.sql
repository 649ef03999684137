-- 20260201100837_InitialIdentity: the fork's second Identity migration. It alters the shadow foreign
-- keys UserClaims.UserId and RoleClaims.RoleId to NOT NULL with defaultValue Guid.Empty, which
-- Npgsql's AlterColumn turns into SET NOT NULL plus SET DEFAULT (the default stays on the column).
-- Schema-unqualified: the migrator runs it with search_path set to "identity".
ALTER TABLE "UserClaims" ALTER COLUMN "UserId" SET NOT NULL;
ALTER TABLE "UserClaims" ALTER COLUMN "UserId" SET DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "RoleClaims" ALTER COLUMN "RoleId" SET NOT NULL;
ALTER TABLE "RoleClaims" ALTER COLUMN "RoleId" SET DEFAULT '00000000-0000-0000-0000-000000000000';
