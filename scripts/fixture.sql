-- A sample clinic database shaped like a real django-tenants deployment.
--
-- public holds what every clinic shares: the tenant registry and the users who log in. Each clinic has its
-- own schema with the same tables, which reference public.users by foreign key and use the citext
-- extension (installed in public). A tenant dump alone therefore does not restore into an empty database:
-- the shared dump of the same cycle goes first.
--
-- The third clinic's schema name needs quoting (upper case, a non-ASCII letter, a space and a double quote).
-- Every value is synthetic.

\set ON_ERROR_STOP 1
BEGIN;

CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;

CREATE TABLE public.tenants_clinic (
    id          serial PRIMARY KEY,
    schema_name text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_on  date NOT NULL DEFAULT current_date
);

CREATE TABLE public.users_user (
    id          serial PRIMARY KEY,
    email       public.citext NOT NULL UNIQUE,
    full_name   text NOT NULL,
    is_staff    boolean NOT NULL DEFAULT false,
    date_joined timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.tenants_clinic (schema_name, name) VALUES
    ('bienestar', 'Centro Bienestar'),
    ('mindcare', 'MindCare Psicología'),
    ('Clínica "Sur"', 'Clínica del Sur');

INSERT INTO public.users_user (email, full_name, is_staff)
SELECT format('Therapist%s@Example.org', n), format('Therapist %s', n), n % 5 = 0
FROM generate_series(1, 12) AS n;

-- Creates one clinic's tables and fills them with a deterministic amount of synthetic data.
CREATE FUNCTION pg_temp.make_clinic(schema_name text, patients int, seed int) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('CREATE SCHEMA %I', schema_name);
    EXECUTE format($sql$
        CREATE TABLE %1$I.patients (
            id             bigserial PRIMARY KEY,
            full_name      text NOT NULL,
            email          public.citext,
            birth_date     date,
            therapist_id   integer NOT NULL REFERENCES public.users_user(id),
            created_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE %1$I.appointments (
            id             bigserial PRIMARY KEY,
            patient_id     bigint NOT NULL REFERENCES %1$I.patients(id) ON DELETE CASCADE,
            therapist_id   integer NOT NULL REFERENCES public.users_user(id),
            starts_at      timestamptz NOT NULL,
            duration_min   integer NOT NULL CHECK (duration_min > 0),
            status         text NOT NULL CHECK (status IN ('scheduled', 'done', 'cancelled'))
        );
        CREATE INDEX ON %1$I.appointments (patient_id, starts_at);
        CREATE TABLE %1$I.session_notes (
            id             bigserial PRIMARY KEY,
            appointment_id bigint NOT NULL REFERENCES %1$I.appointments(id) ON DELETE CASCADE,
            author_id      integer NOT NULL REFERENCES public.users_user(id),
            body           text NOT NULL,
            written_at     timestamptz NOT NULL
        );
    $sql$, schema_name);
    EXECUTE format($sql$
        INSERT INTO %1$I.patients (full_name, email, birth_date, therapist_id)
        SELECT format('Patient %%s-%%s', %2$s, n),
               format('patient%%s.%%s@Example.net', %2$s, n),
               date '1950-01-01' + ((n * 7919 + %2$s) %% 20000),
               1 + ((n + %2$s) %% 12)
        FROM generate_series(1, %3$s) AS n;
        INSERT INTO %1$I.appointments (patient_id, therapist_id, starts_at, duration_min, status)
        SELECT p.id, p.therapist_id,
               timestamptz '2025-01-06 09:00+00' + make_interval(days => k * 7 + (p.id %% 5)::int),
               50,
               (ARRAY['scheduled', 'done', 'cancelled'])[1 + ((p.id + k) %% 3)::int]
        FROM %1$I.patients p, generate_series(0, 2) AS k;
        INSERT INTO %1$I.session_notes (appointment_id, author_id, body, written_at)
        SELECT a.id, a.therapist_id,
               format(E'Session %%s: patient reports "progress"; plan\tcontinue.\nNext: review %%s.', a.id, a.starts_at::date),
               a.starts_at + interval '55 minutes'
        FROM %1$I.appointments a WHERE a.status = 'done';
    $sql$, schema_name, seed, patients);
END
$fn$;

SELECT pg_temp.make_clinic('bienestar', 40, 1);
SELECT pg_temp.make_clinic('mindcare', 25, 2);
SELECT pg_temp.make_clinic('Clínica "Sur"', 15, 3);

COMMIT;
