"""Server-side SQL that fills the legacy ClassifiedAds databases with deterministic, realistic rows.

Every table is filled by one ``INSERT ... SELECT ... FROM generate_series(...)``: nothing is sent row
by row. Values are functions of the row number only, so the same volume gives the same rows:

* ids are ``md5('<kind>:<i>')::uuid``;
* timestamps spread rows evenly over fixed windows (live rows 2024-2025, archived ones 2022-2023);
* choices come from ``hashint8extended(i, hashtext('<kind>'))`` (the "dice", cheaper than md5), so
  they are the same on every little-endian build of PostgreSQL;
* no ``random()``.

Ids another module refers to (users, products, file entries, e-mails) use the same kind
everywhere: an audit entry's ``UserId`` is a user of the Identity database and an e-mail
attachment's ``FileEntryId`` a file entry of the Storage database, although no foreign key can
say so across databases.

Each statement computes its per-row values once, in a subquery fenced with ``OFFSET 0`` (PostgreSQL
would otherwise inline the subquery and evaluate an md5 once per use), then joins ``para``/``lorem``
for text. ``SESSION_SETUP`` creates those session-local helpers: ``pg_temp`` functions (inlined
SQL, hence ``STABLE``) and two small tables of generated English text; all vanish with the session.
"""

from __future__ import annotations

# Rows per unit of --scale, by generator parameter. orphan_user_claims are the claims that lost their
# user (see QUIRKS): 3 at the demo's scale 0.05, at least one at every scale. Derived tables (UserRoles, UserClaims,
# attachments, deleted-file records, ...) follow from these; Roles, RoleClaims and
# DataProtectionKeys have fixed sizes, as in a real deployment.
VOLUME_PER_SCALE_UNIT = {
    "users": 2000,
    "products": 2000,
    "product_outbox": 8000,
    "product_archived_outbox": 20000,
    "product_audit": 11000,
    "files": 2500,
    "storage_outbox": 3500,
    "storage_archived_outbox": 6500,
    "storage_audit": 4000,
    "emails": 6000,
    "archived_emails": 10000,
    "sms": 4000,
    "archived_sms": 7500,
    "audit_entries": 25000,
    "idempotent_requests": 25000,
    "cache_entries": 1200,
    "configuration_entries": 250,
    "localization_entries": 1600,
    "orphan_user_claims": 60,
}


def volume(scale: float) -> dict[str, int]:
    """Generator parameters for ``scale``: at least one row of everything."""
    return {key: max(1, round(base * scale)) for key, base in VOLUME_PER_SCALE_UNIT.items()}


SESSION_SETUP = r"""
SET TimeZone = 'UTC';
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';

CREATE FUNCTION pg_temp.uid(kind text, i bigint) RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT md5(kind || ':' || i)::uuid $$;
-- The dice: a non-negative 63-bit number for (kind, i). hashtext(kind) folds to a constant.
CREATE FUNCTION pg_temp.num(kind text, i bigint) RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT hashint8extended(i, hashtext(kind)) & 9223372036854775807 $$;
CREATE FUNCTION pg_temp.hex16(kind text, i bigint) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT lpad(to_hex(hashint8extended(i, hashtext(kind))), 16, '0') $$;
CREATE FUNCTION pg_temp.pick(choices text[], k bigint) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT choices[1 + mod(k, cardinality(choices))] $$;
-- Row i of n, spread evenly over span_days from start, plus a sub-second offset.
CREATE FUNCTION pg_temp.at(start timestamptz, span_days int, i bigint, n bigint) RETURNS timestamptz
    LANGUAGE sql STABLE AS $$
    SELECT start + ((i * span_days::bigint * 86400) / greatest(n, 1)) * interval '1 second'
                 + mod(i * 7919, 1000000) * interval '1 microsecond' $$;
-- A timestamp as System.Text.Json writes a DateTimeOffset (with the session in UTC), quotes included.
CREATE FUNCTION pg_temp.iso(t timestamptz) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT to_json(t)::text $$;
CREATE FUNCTION pg_temp.js(value text) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT coalesce(to_json(value)::text, 'null') $$;
-- Base64 of hex digits, on one line (encode() wraps at 76 characters).
CREATE FUNCTION pg_temp.b64(hex text) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT translate(encode(decode(hex, 'hex'), 'base64'), E'\n', '') $$;
-- W3C trace context id, as System.Diagnostics.Activity.Id writes it.
CREATE FUNCTION pg_temp.activity(kind text, i bigint) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT '00-' || md5(kind || '@' || i) || '-' || pg_temp.hex16(kind, i) || '-01' $$;

CREATE FUNCTION pg_temp.first_names() RETURNS text[] LANGUAGE sql STABLE AS $$ SELECT ARRAY[
    'Anna','Bao','Carlos','Chi','Daniel','Duc','Elena','Emma','Fatima','Giang','Hana','Hieu','Ivan','Jonas','Kim',
    'Lan','Liam','Linh','Lucas','Mai','Maria','Minh','Nam','Noah','Olivia','Omar','Phong','Quang','Rosa','Sara',
    'Sofia','Tam','Thao','Tuan','Uyen','Victor','Vy','William','Yen','Zoe'] $$;
CREATE FUNCTION pg_temp.last_names() RETURNS text[] LANGUAGE sql STABLE AS $$ SELECT ARRAY[
    'Nguyen','Tran','Le','Pham','Hoang','Vo','Dang','Bui','Do','Ngo','Smith','Johnson','Garcia','Muller','Rossi',
    'Silva','Kowalski','Novak','Jensen','Dubois','Tanaka','Kim','Lee','Park','Khan','Ali','Brown','Martin','Lopez',
    'Schmidt'] $$;
CREATE FUNCTION pg_temp.domains() RETURNS text[] LANGUAGE sql STABLE AS $$ SELECT ARRAY[
    'example.com','example.org','example.net','mail.example.com','contoso.example'] $$;
CREATE FUNCTION pg_temp.adjectives() RETURNS text[] LANGUAGE sql STABLE AS $$ SELECT ARRAY[
    'Compact','Vintage','Wireless','Portable','Ergonomic','Smart','Classic','Refurbished','Premium','Lightweight',
    'Heavy-duty','Foldable','Handmade','Waterproof','Electric','Wooden','Stainless','Solar','Digital','Modular'] $$;
CREATE FUNCTION pg_temp.nouns() RETURNS text[] LANGUAGE sql STABLE AS $$ SELECT ARRAY[
    'Bicycle','Laptop','Sofa','Camera','Guitar','Phone','Desk','Lamp','Stroller','Tent','Watch','Jacket','Drill',
    'Monitor','Printer','Kettle','Scooter','Bookshelf','Headphones','Blender','Backpack','Tablet','Mattress',
    'Speaker','Microwave'] $$;
CREATE FUNCTION pg_temp.vocabulary() RETURNS text[] LANGUAGE sql STABLE AS $$ SELECT ARRAY[
    'the','a','this','our','every','new','used','good','great','small','large','excellent','original','spare',
    'item','condition','price','seller','buyer','delivery','pickup','payment','warranty','box','manual','charger',
    'is','was','has','comes','with','without','for','from','in','on','near','and','or','but','very','almost',
    'works','looks','fits','ships','available','included','negotiable','firm','quickly','carefully','today',
    'weekend','city','center','station','market','store','owner','family','office','kitchen','garden','battery',
    'screen','color','black','white','blue','red','green','silver','size','model','year','brand','receipt',
    'scratches','tested','cleaned','serviced','upgraded','please','contact','message','call','after','before',
    'monday','friday','evening','morning','only','also','still','never','recently','once'] $$;

-- The people, products and files every module talks about.
CREATE FUNCTION pg_temp.first_name(i bigint) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT pg_temp.pick(pg_temp.first_names(), pg_temp.num('first-name', i)) $$;
CREATE FUNCTION pg_temp.last_name(i bigint) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT pg_temp.pick(pg_temp.last_names(), pg_temp.num('last-name', i)) $$;
CREATE FUNCTION pg_temp.user_id(i bigint) RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT pg_temp.uid('user', i) $$;
CREATE FUNCTION pg_temp.user_email(i bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT lower(pg_temp.first_name(i) || '.' || pg_temp.last_name(i) || '.' || i) || '@'
           || pg_temp.pick(pg_temp.domains(), i) $$;
CREATE FUNCTION pg_temp.phone(i bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '+84 9' || lpad(mod(pg_temp.num('phone', i), 100000000)::text, 8, '0') $$;
CREATE FUNCTION pg_temp.product_id(i bigint) RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT pg_temp.uid('product', i) $$;
CREATE FUNCTION pg_temp.product_code(i bigint) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT 'PD' || lpad(i::text, 6, '0') $$;
CREATE FUNCTION pg_temp.product_name(i bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT pg_temp.pick(pg_temp.adjectives(), pg_temp.num('adjective', i)) || ' '
           || pg_temp.pick(pg_temp.nouns(), pg_temp.num('noun', i)) $$;
CREATE FUNCTION pg_temp.file_id(i bigint) RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT pg_temp.uid('file', i) $$;
CREATE FUNCTION pg_temp.file_name(i bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT pg_temp.pick(ARRAY['invoice','photo','contract','manual','receipt','listing','avatar','report'],
                        pg_temp.num('file-kind', i))
           || '-' || lpad(i::text, 6, '0') || '.'
           || pg_temp.pick(ARRAY['pdf','jpg','png','docx','xlsx','txt'], pg_temp.num('file-extension', i)) $$;
CREATE FUNCTION pg_temp.file_size(i bigint) RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT 1024 + mod(pg_temp.num('file-size', i), 20000000) $$;
-- The live e-mails' ids (EmailMessages uses the kind 'email').
CREATE FUNCTION pg_temp.email_id(i bigint) RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT pg_temp.uid('email', i) $$;

-- 4096 sentences of 6 to 20 words, and 1024 paragraphs of 2 to 9 of them (about 180 to 900 bytes),
-- each also JSON-encoded once here rather than once per row.
CREATE TEMP TABLE lorem (k integer PRIMARY KEY, s text NOT NULL, sj text NOT NULL);
INSERT INTO lorem
SELECT k, s, to_json(s)::text
FROM (SELECT g.k, upper(left(w.s, 1)) || substr(w.s, 2) || '.' AS s
      FROM generate_series(0, 4095) AS g(k)
      CROSS JOIN LATERAL (
          SELECT string_agg(pg_temp.pick(pg_temp.vocabulary(), pg_temp.num('lorem', g.k * 64 + n)), ' ' ORDER BY n)
          FROM generate_series(1, 6 + mod(g.k, 15)) AS n) AS w(s)) AS sentences;
CREATE TEMP TABLE para (k integer PRIMARY KEY, p text NOT NULL, pj text NOT NULL);
INSERT INTO para
SELECT k, p, to_json(p)::text
FROM (SELECT g.k, string_agg(l.s, ' ' ORDER BY j) AS p
      FROM generate_series(0, 1023) AS g(k)
      CROSS JOIN LATERAL generate_series(1, 2 + mod(g.k, 8)) AS j
      JOIN lorem AS l ON l.k = mod(g.k * 37 + j * 101, 4096)
      GROUP BY g.k) AS paragraphs;
ANALYZE lorem;
ANALYZE para;
"""

# Outbox messages (Product and Storage modules) ----------------------------------------------------
# Payload is the JSON of the entity the event is about, as System.Text.Json writes it.

_OUTBOX = """
INSERT INTO "{table}" ("Id", "RowVersion", "CreatedDateTime", "UpdatedDateTime", "EventType", "TriggeredById",
                       "ObjectId", "Payload", "Published", "ActivityId")
SELECT r.id, NULL, r.created, CASE WHEN r.published THEN r.created + (1 + mod(r.i, 30)) * interval '1 second' END,
       r.event_type, r.triggered_by, r.object_id::text, {payload}, r.published, r.activity
FROM (SELECT i, pg_temp.uid(%(kind)s, i) AS id, pg_temp.at(%(start)s, %(span_days)s, i, %(n)s) AS created,
             %(archived)s OR i <= %(n)s * 0.97 AS published,
             pg_temp.pick(%(event_types)s, pg_temp.num(%(kind)s || '-event', i)) AS event_type,
             pg_temp.user_id(1 + mod(pg_temp.num(%(kind)s || '-user', i), %(users)s)) AS triggered_by,
             CASE WHEN mod(i, 5) <> 0 THEN pg_temp.activity(%(kind)s, i) END AS activity,
             1 + mod(pg_temp.num(%(kind)s || '-object', i), %({objects})s) AS object_no,
             {object_id}(1 + mod(pg_temp.num(%(kind)s || '-object', i), %({objects})s)) AS object_id
      FROM generate_series(1, %(n)s) AS i OFFSET 0) AS r
JOIN para AS p ON p.k = mod(r.i * 131, 1024)
"""

_PRODUCT_PAYLOAD = """'{"Id":"' || r.object_id || '","Code":"' || pg_temp.product_code(r.object_no)
       || '","Name":"' || pg_temp.product_name(r.object_no) || '","Description":' || p.pj
       || ',"RowVersion":null,"CreatedDateTime":' || pg_temp.iso(r.created) || ',"UpdatedDateTime":null}'"""

_FILE_PAYLOAD = """'{"Id":"' || r.object_id || '","Name":"' || pg_temp.file_name(r.object_no)
       || '","Description":' || p.pj || ',"Size":' || pg_temp.file_size(r.object_no)
       || ',"UploadedTime":' || pg_temp.iso(r.created) || ',"FileName":"' || pg_temp.file_name(r.object_no)
       || '","Encrypted":false,"Archived":false,"Deleted":false,"RowVersion":null,"CreatedDateTime":'
       || pg_temp.iso(r.created) || ',"UpdatedDateTime":null}'"""

# Audit log entries (Product, Storage and AuditLog modules) ----------------------------------------
# Log is the JSON of the object acted on.

_AUDIT = """
INSERT INTO "AuditLogEntries" ("Id", "UserId", "Action", "ObjectId", "Log", "RowVersion", "CreatedDateTime",
                               "UpdatedDateTime")
SELECT r.id, r.user_id, r.action, r.object_id::text, {log}, NULL, r.created, NULL
FROM (SELECT i, pg_temp.uid(%(kind)s, i) AS id, pg_temp.at(%(start)s, %(span_days)s, i, %(n)s) AS created,
             pg_temp.user_id(1 + mod(pg_temp.num(%(kind)s || '-user', i), %(users)s)) AS user_id,
             pg_temp.pick(%(actions)s, pg_temp.num(%(kind)s || '-action', i)) AS action,
             1 + mod(pg_temp.num(%(kind)s || '-object', i), %({objects})s) AS object_no,
             {object_id}(1 + mod(pg_temp.num(%(kind)s || '-object', i), %({objects})s)) AS object_id
      FROM generate_series(1, %(n)s) AS i OFFSET 0) AS r
JOIN para AS p ON p.k = mod(r.i * 173, 1024)
"""

_PRODUCT_LOG = """'{"Id":"' || r.object_id || '","Code":"' || pg_temp.product_code(r.object_no) || '","Name":"'
       || pg_temp.product_name(r.object_no) || '","Description":' || p.pj || '}'"""

_FILE_LOG = """'{"Id":"' || r.object_id || '","Name":"' || pg_temp.file_name(r.object_no) || '","Size":'
       || pg_temp.file_size(r.object_no) || ',"Description":' || p.pj || '}'"""

# The AuditLog module's own entries are about users (sign-ins, profile changes) and carry the
# request's details.
_USER_LOG = """'{"UserId":"' || r.object_id || '","Email":"' || pg_temp.user_email(r.object_no)
       || '","IpAddress":"10.' || mod(r.i, 250) || '.' || mod(r.i / 250, 250) || '.' || (1 + mod(r.i, 7))
       || '","Details":' || p.pj || '}'"""

# E-mail and SMS messages (Notification module) -----------------------------------------------------

_EMAIL = """
INSERT INTO "{table}" ("Id", "RowVersion", "CreatedDateTime", "UpdatedDateTime", "From", "Tos", "CCs", "BCCs",
                       "Subject", "Body", "AttemptCount", "MaxAttemptCount", "NextAttemptDateTime",
                       "ExpiredDateTime", "Log", "SentDateTime", "CopyFromId")
SELECT r.id, NULL, r.created, r.sent, 'noreply@classifiedads.example', pg_temp.user_email(r.user_no),
       CASE WHEN mod(r.i, 7) = 0 THEN pg_temp.user_email(1 + mod(r.i * 3, %(users)s)) END,
       CASE WHEN mod(r.i, 23) = 0 THEN 'audit@classifiedads.example' END,
       left(s.s, 78),
       '<html><body><p>Hello ' || pg_temp.first_name(r.user_no) || ',</p><p>' || p1.p || '</p><p>'
       || left(p2.p, 400) || '</p><p>Kind regards,<br/>The ClassifiedAds team</p></body></html>',
       r.attempts, 3,
       CASE WHEN r.sent IS NULL AND r.attempts < 3 THEN r.created + r.attempts * interval '5 minutes' END,
       r.created + interval '3 days',
       CASE WHEN r.attempts > 1 THEN 'SmtpException: Mailbox unavailable. The server response was: 4.2.2 Mailbox full'
       END,
       r.sent, r.copy_from
FROM (SELECT i, c.id, c.created, c.attempts, c.user_no, c.copy_from,
             CASE WHEN %(archived)s OR i <= %(n)s * 0.95
                  THEN c.created + (1 + c.attempts * 300 + mod(i, 60)) * interval '1 second' END AS sent
      FROM generate_series(1, %(n)s) AS i
      CROSS JOIN LATERAL (
          SELECT pg_temp.uid(%(kind)s, i) AS id, pg_temp.at(%(start)s, %(span_days)s, i, %(n)s) AS created,
                 CASE WHEN mod(i, 19) = 0 THEN 3 WHEN mod(i, 7) = 0 THEN 2 ELSE 1 END AS attempts,
                 1 + mod(pg_temp.num(%(kind)s || '-user', i), %(users)s) AS user_no,
                 CASE WHEN mod(i, 50) = 0 THEN pg_temp.uid(%(kind)s, i - 1) END AS copy_from) AS c
      OFFSET 0) AS r
JOIN lorem AS s ON s.k = mod(r.i * 29, 4096)
JOIN para AS p1 ON p1.k = mod(r.i * 7, 1024)
JOIN para AS p2 ON p2.k = mod(r.i * 13 + 5, 1024)
"""

_SMS = """
INSERT INTO "{table}" ("Id", "RowVersion", "CreatedDateTime", "UpdatedDateTime", "Message", "PhoneNumber",
                       "AttemptCount", "MaxAttemptCount", "NextAttemptDateTime", "ExpiredDateTime", "Log",
                       "SentDateTime", "CopyFromId")
SELECT r.id, NULL, r.created, r.sent, 'ClassifiedAds: ' || left(s.s, 140), pg_temp.phone(r.user_no),
       r.attempts, 3,
       CASE WHEN r.sent IS NULL AND r.attempts < 3 THEN r.created + r.attempts * interval '5 minutes' END,
       r.created + interval '1 day',
       CASE WHEN r.attempts > 1 THEN 'Twilio error 30003: Unreachable destination handset' END,
       r.sent, r.copy_from
FROM (SELECT i, c.id, c.created, c.attempts, c.user_no, c.copy_from,
             CASE WHEN %(archived)s OR i <= %(n)s * 0.95
                  THEN c.created + (1 + c.attempts * 120 + mod(i, 30)) * interval '1 second' END AS sent
      FROM generate_series(1, %(n)s) AS i
      CROSS JOIN LATERAL (
          SELECT pg_temp.uid(%(kind)s, i) AS id, pg_temp.at(%(start)s, %(span_days)s, i, %(n)s) AS created,
                 CASE WHEN mod(i, 17) = 0 THEN 3 WHEN mod(i, 9) = 0 THEN 2 ELSE 1 END AS attempts,
                 1 + mod(pg_temp.num(%(kind)s || '-user', i), %(users)s) AS user_no,
                 CASE WHEN mod(i, 60) = 0 THEN pg_temp.uid(%(kind)s, i - 1) END AS copy_from) AS c
      OFFSET 0) AS r
JOIN lorem AS s ON s.k = mod(r.i * 31, 4096)
"""

# Live rows span 2024-2025; archived ones are older (2022-2023) and have ids of their own.
_LIVE = {"start": "2024-01-01 00:00:00+00", "span_days": 730}
_ARCHIVE = {"start": "2022-01-01 00:00:00+00", "span_days": 730}
_PRODUCT_EVENTS = ["PRODUCT_CREATED", "PRODUCT_UPDATED", "PRODUCT_UPDATED", "PRODUCT_DELETED"]
_FILE_EVENTS = ["FILEENTRY_CREATED", "FILEENTRY_UPDATED", "FILEENTRY_DELETED"]
_PRODUCT_ACTIONS = ["CREATED_PRODUCT", "UPDATED_PRODUCT", "UPDATED_PRODUCT", "DELETED_PRODUCT"]
_FILE_ACTIONS = ["CREATED_FILEENTRY", "UPDATED_FILEENTRY", "DELETED_FILEENTRY", "DOWNLOADED_FILEENTRY"]
_USER_ACTIONS = ["LOGGED_IN", "LOGGED_IN", "LOGGED_IN", "UPDATED_USER", "CHANGED_PASSWORD", "LOGGED_OUT"]

_PRODUCTS = {"objects": "products", "object_id": "pg_temp.product_id"}
_FILES = {"objects": "files", "object_id": "pg_temp.file_id"}
_USERS = {"objects": "users", "object_id": "pg_temp.user_id"}


def _outbox(table, kind, count, payload, objects, events, window):
    statement = _OUTBOX.format(table=table, payload=payload, **objects)
    return table, statement, {"kind": kind, "count": count, "event_types": events,
                              "archived": table.startswith("Archived"), **window}


def _audit(kind, count, log, objects, actions):
    statement = _AUDIT.format(log=log, **objects)
    return "AuditLogEntries", statement, {"kind": kind, "count": count, "actions": actions, **_LIVE}


def _messages(template, table, kind, count, window):
    return table, template.format(table=table), {"kind": kind, "count": count,
                                                 "archived": table.startswith("Archived"), **window}


# What years of production leave behind and a freshly generated database lacks, as real
# installations show it; each entry is (table, statement, parameters) like GENERATORS'.
#
# * NULL shadow foreign keys. The legacy model's UserClaims.UserId and RoleClaims.RoleId are
#   optional shadow keys, and EF Core's ClientSetNull sets them to NULL when a user or role is
#   deleted while its claims are tracked: the claims stay, owned by nobody. The application's
#   InitialIdentity migration makes both columns NOT NULL, so a plain copy fails on them.
# * Identity gaps and a sequence ahead of its column. Data-protection keys past their rotation
#   were deleted (holes in the Id), and inserts that rolled back consumed identity values.
# * A sequence no column owns. DbUp's journal was restored by a tool that dropped OWNED BY:
#   the column default still calls nextval() on it, but pg_get_serial_sequence() finds nothing.
#   A journaling attempt that rolled back left it ahead of the column too.
QUIRKS = {
    "identity_claims": [
        ("UserClaims", """
INSERT INTO "UserClaims" ("Id", "Type", "Value", "UserId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('orphan-user-claim', i), 'name',
       pg_temp.first_name(%(users)s + i) || ' ' || pg_temp.last_name(%(users)s + i), NULL, NULL,
       pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s),
       pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s) + interval '40 days'
FROM generate_series(1, %(n)s) AS i
""", {"count": "orphan_user_claims"}),
        ("RoleClaims", """
INSERT INTO "RoleClaims" ("Id", "Type", "Value", "RoleId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('orphan-role-claim', i), 'Permission', p.permission, NULL, NULL,
       timestamptz '2023-12-01 10:00:00+00' + i * interval '1 day', timestamptz '2024-06-01 08:00:00+00'
FROM unnest(ARRAY['Reports.Read', 'Reports.Export']) WITH ORDINALITY AS p(permission, i)
""", {}),
    ],
    "identity_keys": [
        ("DataProtectionKeys", """
DELETE FROM "DataProtectionKeys" WHERE "Id" IN (3, 6);
SELECT nextval(pg_get_serial_sequence('"DataProtectionKeys"', 'Id')) FROM generate_series(1, 4)
""", {}),
    ],
    "auditlog": [
        ("schemaversions", """
ALTER SEQUENCE public.schemaversions_schemaversionsid_seq OWNED BY NONE;
SELECT nextval('public.schemaversions_schemaversionsid_seq')
""", {}),
    ],
}

# Per module, in load order: (table, INSERT ... SELECT, parameters). The parameter "count" names the
# volume key that becomes %(n)s; every volume key is available to every statement as well.
GENERATORS = {
    "identity": [
        ("Roles", """
INSERT INTO "Roles" ("Id", "Name", "NormalizedName", "ConcurrencyStamp", "RowVersion", "CreatedDateTime",
                     "UpdatedDateTime")
SELECT pg_temp.uid('role', r.i), r.name, upper(r.name), pg_temp.uid('role-stamp', r.i)::text, NULL,
       timestamptz '2023-12-01 09:00:00+00' + r.i * interval '1 hour', NULL
FROM unnest(ARRAY['Admin','User','Moderator','Seller','Buyer','Support','Auditor','Guest'])
     WITH ORDINALITY AS r(name, i)
""", {}),
        ("Users", """
INSERT INTO "Users" ("Id", "UserName", "NormalizedUserName", "Email", "NormalizedEmail", "EmailConfirmed",
                     "PasswordHash", "PhoneNumber", "PhoneNumberConfirmed", "TwoFactorEnabled", "ConcurrencyStamp",
                     "SecurityStamp", "LockoutEnabled", "LockoutEnd", "AccessFailedCount", "Auth0UserId",
                     "AzureAdB2CUserId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT r.id, r.email, upper(r.email), r.email, upper(r.email), mod(r.i, 10) <> 0,
       -- ASP.NET Core Identity v3: marker 1, PBKDF2-HMACSHA512, 100000 iterations, 16-byte salt, 32-byte subkey.
       pg_temp.b64('0100000002000186a000000010' || md5('salt:' || r.i) || md5('subkey:' || r.i)
                   || pg_temp.hex16('subkey2', r.i) || pg_temp.hex16('subkey3', r.i)),
       CASE WHEN mod(r.i, 5) < 3 THEN pg_temp.phone(r.i) END, mod(r.i, 5) = 0, mod(r.i, 17) = 0,
       pg_temp.uid('user-stamp', r.i)::text,
       upper(pg_temp.hex16('security-stamp', r.i) || pg_temp.hex16('security-stamp-2', r.i)), true,
       CASE WHEN mod(r.i, 97) = 0 THEN r.created + interval '400 days' END,
       CASE WHEN mod(r.i, 97) = 0 THEN 5 WHEN mod(r.i, 13) = 0 THEN 1 ELSE 0 END,
       CASE WHEN mod(r.i, 11) = 0 THEN 'auth0|' || pg_temp.hex16('auth0', r.i) END,
       CASE WHEN mod(r.i, 29) = 0 THEN pg_temp.uid('azure-ad-b2c', r.i)::text END,
       NULL, r.created,
       CASE WHEN mod(r.i, 3) <> 0 THEN r.created + mod(r.i, 86400) * interval '1 second' END
FROM (SELECT i, pg_temp.user_id(i) AS id, pg_temp.user_email(i) AS email,
             pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s) AS created
      FROM generate_series(1, %(n)s) AS i OFFSET 0) AS r
""", {"count": "users"}),
        # Everyone is a "User"; every fifth user has a second role.
        ("UserRoles", """
INSERT INTO "UserRoles" ("Id", "UserId", "RoleId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('user-role', i * 2 + r.k), pg_temp.user_id(i),
       pg_temp.uid('role', CASE WHEN r.k = 0 THEN 2 ELSE (ARRAY[1, 3, 4, 5, 6, 7, 8])[1 + mod(i / 5, 7)] END),
       NULL, pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(users)s) + r.k * interval '1 day', NULL
FROM generate_series(1, %(users)s) AS i
CROSS JOIN LATERAL (VALUES (0), (1)) AS r(k)
WHERE r.k = 0 OR mod(i, 5) = 0
""", {}),
        ("UserClaims", """
INSERT INTO "UserClaims" ("Id", "Type", "Value", "UserId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('user-claim', i * 2 + c.k), c.type,
       CASE c.type WHEN 'name' THEN pg_temp.first_name(i) || ' ' || pg_temp.last_name(i)
                   ELSE pg_temp.pick(ARRAY['en-US','vi-VN','fr-FR','de-DE'], i) END,
       pg_temp.user_id(i), NULL, pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(users)s), NULL
FROM generate_series(1, %(users)s) AS i
CROSS JOIN LATERAL (VALUES (0, 'name'), (1, 'locale')) AS c(k, type)
""", {}),
        ("RoleClaims", """
INSERT INTO "RoleClaims" ("Id", "Type", "Value", "RoleId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('role-claim', r * 100 + p.i), 'Permission', p.permission, pg_temp.uid('role', r), NULL,
       timestamptz '2023-12-01 10:00:00+00' + (r * 100 + p.i) * interval '1 minute', NULL
FROM generate_series(1, 8) AS r
CROSS JOIN LATERAL unnest(ARRAY['Products.Read','Products.Create','Products.Update','Products.Delete',
                                'Files.Read','Files.Upload','Users.Read','Users.Manage','AuditLogs.Read',
                                'Configuration.Manage']) WITH ORDINALITY AS p(permission, i)
WHERE r = 1 OR mod(p.i + r, 3) = 0
""", {}),
        *QUIRKS["identity_claims"],
        ("UserLogins", """
INSERT INTO "UserLogins" ("Id", "UserId", "LoginProvider", "ProviderKey", "ProviderDisplayName", "RowVersion",
                          "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('user-login', i), pg_temp.user_id(i), l.provider,
       lpad(mod(pg_temp.num('login-key', i), 1000000000000000000)::text, 21, '1'), l.provider, NULL,
       pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(users)s) + interval '5 minutes', NULL
FROM generate_series(4, %(users)s, 4) AS i
CROSS JOIN LATERAL (SELECT pg_temp.pick(ARRAY['Google','Microsoft','Facebook'], i / 4) AS provider) AS l
""", {}),
        ("UserTokens", """
INSERT INTO "UserTokens" ("Id", "UserId", "LoginProvider", "TokenName", "TokenValue", "RowVersion",
                          "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('user-token', i), pg_temp.user_id(i), '[AspNetUserStore]',
       CASE WHEN mod(i, 4) = 0 THEN 'RecoveryCodes' ELSE 'AuthenticatorKey' END,
       CASE WHEN mod(i, 4) = 0
            THEN upper(left(pg_temp.hex16('rc1', i), 5) || '-' || right(pg_temp.hex16('rc1', i), 5) || ';'
                       || left(pg_temp.hex16('rc2', i), 5) || '-' || right(pg_temp.hex16('rc2', i), 5))
            ELSE upper(pg_temp.hex16('totp', i) || pg_temp.hex16('totp2', i)) END,
       NULL, pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(users)s) + interval '1 day',
       CASE WHEN mod(i, 3) = 0 THEN pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(users)s) + interval '9 days' END
FROM generate_series(2, %(users)s, 2) AS i
""", {}),
        # One key per 90-day rotation over two years; no explicit Id, so the identity sequence advances.
        ("DataProtectionKeys", """
INSERT INTO "DataProtectionKeys" ("FriendlyName", "Xml")
SELECT 'key-' || k.id,
       '<?xml version="1.0" encoding="utf-8"?><key id="' || k.id || '" version="1"><creationDate>'
       || trim(pg_temp.iso(k.created), '"') || '</creationDate><activationDate>'
       || trim(pg_temp.iso(k.created + interval '2 days'), '"') || '</activationDate><expirationDate>'
       || trim(pg_temp.iso(k.created + interval '90 days'), '"')
       || '</expirationDate><descriptor deserializerType="Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.'
       || 'ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, '
       || 'Version=10.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60"><descriptor><encryption '
       || 'algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" /><masterKey p4:requiresEncryption="true" '
       || 'xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><!-- Warning: the key below is in an '
       || 'unencrypted form. --><value>'
       || pg_temp.b64(md5('master-key-1:' || i) || md5('master-key-2:' || i) || md5('master-key-3:' || i)
                      || md5('master-key-4:' || i))
       || '</value></masterKey></descriptor></descriptor></key>'
FROM generate_series(1, 8) AS i
CROSS JOIN LATERAL (SELECT pg_temp.uid('data-protection-key', i) AS id,
                           timestamptz '2024-01-01 00:00:00+00' + (i - 1) * interval '88 days' AS created) AS k
ORDER BY i
""", {}),
        *QUIRKS["identity_keys"],
    ],
    "product": [
        ("Products", """
INSERT INTO "Products" ("Id", "Code", "Name", "Description", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.product_id(i), pg_temp.product_code(i), pg_temp.product_name(i),
       CASE WHEN mod(i, 11) <> 0 THEN l.s END, NULL, pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s),
       CASE WHEN mod(i, 4) <> 0
            THEN pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s) + mod(i * 37, 2592000) * interval '1 second' END
FROM generate_series(1, %(n)s) AS i
JOIN lorem AS l ON l.k = mod(i * 61, 4096)
""", {"count": "products"}),
        _outbox("OutboxMessages", "product-outbox", "product_outbox", _PRODUCT_PAYLOAD, _PRODUCTS, _PRODUCT_EVENTS,
                _LIVE),
        _outbox("ArchivedOutboxMessages", "product-archived-outbox", "product_archived_outbox", _PRODUCT_PAYLOAD,
                _PRODUCTS, _PRODUCT_EVENTS, _ARCHIVE),
        _audit("product-audit", "product_audit", _PRODUCT_LOG, _PRODUCTS, _PRODUCT_ACTIONS),
    ],
    "storage": [
        ("FileEntries", """
INSERT INTO "FileEntries" ("Id", "Name", "Description", "Size", "UploadedTime", "FileName", "FileLocation",
                           "Encrypted", "EncryptionKey", "EncryptionIV", "Archived", "ArchivedDate", "Deleted",
                           "DeletedDate", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT r.id, pg_temp.file_name(r.i), CASE WHEN mod(r.i, 3) <> 0 THEN l.s END, pg_temp.file_size(r.i), r.created,
       pg_temp.file_name(r.i), to_char(r.created, 'YYYY/MM/DD/') || r.id,
       mod(r.i, 3) = 0,
       CASE WHEN mod(r.i, 3) = 0 THEN pg_temp.b64(md5('file-key:' || r.i) || md5('file-key-2:' || r.i)) END,
       CASE WHEN mod(r.i, 3) = 0 THEN pg_temp.b64(md5('file-iv:' || r.i)) END,
       mod(r.i, 10) = 0, CASE WHEN mod(r.i, 10) = 0 THEN r.created + interval '180 days' END,
       mod(r.i, 20) = 0, CASE WHEN mod(r.i, 20) = 0 THEN r.created + interval '30 days' END,
       NULL, r.created,
       CASE WHEN mod(r.i, 10) = 0 OR mod(r.i, 20) = 0 THEN r.created + interval '180 days' END
FROM (SELECT i, pg_temp.file_id(i) AS id, pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s) AS created
      FROM generate_series(1, %(n)s) AS i OFFSET 0) AS r
JOIN lorem AS l ON l.k = mod(r.i * 89, 4096)
""", {"count": "files"}),
        # One record per deleted file entry (every twentieth, see above); no FK, as in the application.
        ("DeletedFileEntries", """
INSERT INTO "DeletedFileEntries" ("Id", "FileEntryId", "RowVersion", "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('deleted-file', i), pg_temp.file_id(i), NULL,
       pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(files)s) + interval '30 days', NULL
FROM generate_series(20, %(files)s, 20) AS i
""", {}),
        _outbox("OutboxMessages", "storage-outbox", "storage_outbox", _FILE_PAYLOAD, _FILES, _FILE_EVENTS, _LIVE),
        _outbox("ArchivedOutboxMessages", "storage-archived-outbox", "storage_archived_outbox", _FILE_PAYLOAD,
                _FILES, _FILE_EVENTS, _ARCHIVE),
        _audit("storage-audit", "storage_audit", _FILE_LOG, _FILES, _FILE_ACTIONS),
    ],
    "notification": [
        # The kind "email" makes the live e-mails' ids pg_temp.email_id(i), which attachments refer to.
        _messages(_EMAIL, "EmailMessages", "email", "emails", _LIVE),
        _messages(_EMAIL, "ArchivedEmailMessages", "archived-email", "archived_emails", _ARCHIVE),
        _messages(_SMS, "SmsMessages", "sms", "sms", _LIVE),
        _messages(_SMS, "ArchivedSmsMessages", "archived-sms", "archived_sms", _ARCHIVE),
        # Every fourth live e-mail has an attachment, every twentieth a second one: files of the Storage module.
        ("EmailMessageAttachments", """
INSERT INTO "EmailMessageAttachments" ("Id", "EmailMessageId", "FileEntryId", "Name", "RowVersion",
                                       "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('email-attachment', i * 2 + a.k), pg_temp.email_id(i),
       pg_temp.file_id(1 + mod(i * 2 + a.k, %(files)s)), pg_temp.file_name(1 + mod(i * 2 + a.k, %(files)s)),
       NULL, pg_temp.at(%(start)s, %(span_days)s, i, %(emails)s), NULL
FROM generate_series(4, %(emails)s, 4) AS i
CROSS JOIN LATERAL (VALUES (0), (1)) AS a(k)
WHERE a.k = 0 OR mod(i, 20) = 0
""", dict(_LIVE)),
    ],
    "auditlog": [
        _audit("audit-entry", "audit_entries", _USER_LOG, _USERS, _USER_ACTIONS),
        # The consumer of AUDIT_LOG_ENTRY_CREATED messages records each message it has handled.
        ("IdempotentRequests", """
INSERT INTO "IdempotentRequests" ("Id", "RequestType", "RequestId", "RowVersion", "CreatedDateTime",
                                  "UpdatedDateTime")
SELECT pg_temp.uid('idempotent-request', i), 'ADD_AUDIT_LOG_ENTRY', pg_temp.uid('audit-message', i)::text, NULL,
       pg_temp.at(%(start)s, %(span_days)s, i, %(n)s), NULL
FROM generate_series(1, %(n)s) AS i
""", {"count": "idempotent_requests", **_LIVE}),
        # DbUp's distributed-cache table, with serialized objects as values.
        ("CacheEntries", """
INSERT INTO "CacheEntries" ("Id", "Value", "ExpiresAtTime", "SlidingExpirationInSeconds", "AbsoluteExpiration")
SELECT 'ClassifiedAds:' || r.kind || ':' || r.object_id,
       convert_to('{"Id":"' || r.object_id || '","Name":"' || pg_temp.product_name(r.i) || '","Description":'
                  || p.pj || ',"CachedAt":' || pg_temp.iso(r.cached_at) || '}', 'UTF8'),
       r.cached_at + interval '20 minutes',
       CASE WHEN mod(r.i, 2) = 0 THEN 1200 END,
       CASE WHEN mod(r.i, 3) = 0 THEN r.cached_at + interval '1 hour' END
FROM (SELECT i, pg_temp.pick(ARRAY['Product','FileEntry','User'], i) AS kind, pg_temp.uid('cache', i) AS object_id,
             pg_temp.at('2025-12-01 00:00:00+00', 60, i, %(n)s) AS cached_at
      FROM generate_series(1, %(n)s) AS i OFFSET 0) AS r
JOIN para AS p ON p.k = mod(r.i * 191, 1024)
""", {"count": "cache_entries"}),
        *QUIRKS["auditlog"],
    ],
    "configuration": [
        ("ConfigurationEntries", """
INSERT INTO "ConfigurationEntries" ("Id", "Key", "Value", "Description", "IsSensitive", "RowVersion",
                                    "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('configuration-entry', i),
       pg_temp.pick(ARRAY['Features','Storage','Notification','Caching','Security','Monitoring'], i) || ':'
       || pg_temp.pick(pg_temp.nouns(), pg_temp.num('configuration-key', i)) || ':Setting' || i,
       CASE WHEN mod(i, 10) = 0 THEN pg_temp.b64(md5('secret:' || i))
            WHEN mod(i, 3) = 0 THEN mod(i * 7, 100)::text
            ELSE pg_temp.pick(ARRAY['true','false','Enabled','Disabled','https://api.example.com/v1'], i) END,
       CASE WHEN mod(i, 4) <> 0 THEN l.s END, mod(i, 10) = 0, NULL,
       pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s),
       CASE WHEN mod(i, 5) = 0 THEN pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s) + interval '10 days' END
FROM generate_series(1, %(n)s) AS i
JOIN lorem AS l ON l.k = mod(i * 43, 4096)
""", {"count": "configuration_entries"}),
        ("LocalizationEntries", """
INSERT INTO "LocalizationEntries" ("Id", "Name", "Value", "Culture", "Description", "RowVersion",
                                   "CreatedDateTime", "UpdatedDateTime")
SELECT pg_temp.uid('localization-entry', i), 'Resource.' || pg_temp.pick(pg_temp.nouns(), i / 5) || '.Label' || (i / 5),
       left(l.s, 120), (ARRAY['en-US','vi-VN','fr-FR','de-DE','ja-JP'])[1 + mod(i, 5)],
       CASE WHEN mod(i, 9) = 0 THEN 'Shown on the listing page' END, NULL,
       pg_temp.at('2024-01-01 00:00:00+00', 700, i, %(n)s), NULL
FROM generate_series(1, %(n)s) AS i
JOIN lorem AS l ON l.k = mod(i * 53, 4096)
""", {"count": "localization_entries"}),
    ],
}
