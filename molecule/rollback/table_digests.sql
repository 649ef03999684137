-- Count and md5 of the rows of every table in public, one line per table:
-- equal lines mean equal contents, whatever the physical order of the rows.
-- prepare.yml records them before the consolidation, verify compares after the rollback.
SELECT c.relname || ' ' || (xpath('/row/d/text()', query_to_xml(format(
           'SELECT count(*) || '' '' || md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) AS d FROM %I.%I t',
           n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname;
