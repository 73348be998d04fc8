-- Benchmark data: one schema of clinical-looking session notes, :rows rows (psql variables schema, rows).
-- Text with the mix of repetition and noise real notes have, so compression ratios are realistic.
\set ON_ERROR_STOP 1
CREATE SCHEMA :"schema";
CREATE TABLE :"schema".session_notes (
    id          bigserial PRIMARY KEY,
    patient_id  integer NOT NULL,
    written_at  timestamptz NOT NULL,
    body        text NOT NULL
);
INSERT INTO :"schema".session_notes (patient_id, written_at, body)
SELECT n % 5000,
       timestamptz '2024-01-01 09:00+00' + n * interval '1 minute',
       'Session ' || n || ': patient ' || (n % 5000) || ' reports '
         || (ARRAY['progress', 'setbacks at work', 'a stable mood', 'anxiety before meetings', 'poor sleep'])[1 + n % 5]
         || '. Plan: ' || (ARRAY['continue CBT', 'review medication', 'weekly follow-up', 'breathing exercises'])[1 + n % 4]
         || '. Ref ' || md5(n::text) || ' ' || md5((n::bigint * 7919)::text)
         || '. ' || repeat('Discussed goals and homework. ', 1 + n % 4)
FROM generate_series(1, :rows) AS n;
ANALYZE :"schema".session_notes;
