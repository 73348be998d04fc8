import NIOCore
import Testing

@testable import TenantBackup

/// The statement filter every restored byte passes: what pg_dump writes for one schema goes through (less its
/// own `\restrict` lines), anything else refuses the whole dump, however it is split into chunks.
@Suite struct DumpFilterTests {
    static let header = """
        --
        -- PostgreSQL database dump
        --

        \\restrict lJk5cao8Vab8VOkepDcj8rEEDMkJJI0PKCKBgLw9tkic8leLWedwjbKCe4yhXeL

        -- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
        -- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

        SET statement_timeout = 0;
        SET lock_timeout = 0;
        SET idle_in_transaction_session_timeout = 0;
        SET client_encoding = 'UTF8';
        SET standard_conforming_strings = on;
        SELECT pg_catalog.set_config('search_path', '', false);
        SET check_function_bodies = false;
        SET xmloption = content;
        SET client_min_messages = warning;
        SET row_security = off;

        --
        -- Name: bienestar; Type: SCHEMA; Schema: -; Owner: postgres
        --

        CREATE SCHEMA bienestar;


        ALTER SCHEMA bienestar OWNER TO postgres;

        SET default_tablespace = '';

        SET default_table_access_method = heap;

        CREATE FUNCTION bienestar.touch() RETURNS trigger
            LANGUAGE plpgsql
            AS $$
        BEGIN
          NEW.updated := now(); -- COMMIT; \\! not a meta-command inside a body
          RETURN NEW;
        END
        $$;

        CREATE FUNCTION bienestar.standard() RETURNS integer
            LANGUAGE sql
            BEGIN ATOMIC
             SELECT 1;
             SELECT 2;
            END;

        CREATE TABLE bienestar.patients (
            id bigint NOT NULL,
            full_name text NOT NULL,
            note text DEFAULT 'it''s \\ fine'::text,
            CONSTRAINT "odd;name" CHECK ((id > 0))
        );

        ALTER TABLE bienestar.patients OWNER TO postgres;

        COMMENT ON TABLE bienestar.patients IS 'patients; \\! still a string';

        COPY bienestar.patients (id, full_name, note) FROM stdin;
        1\tAna\t\\! echo data, not a command
        2\tBea\tCOMMIT;
        3\tCai\t\\\\.
        \\.


        SELECT pg_catalog.setval('bienestar.patients_id_seq', 40, true);

        ALTER TABLE ONLY bienestar.patients
            ADD CONSTRAINT patients_pkey PRIMARY KEY (id);

        GRANT USAGE ON SCHEMA bienestar TO PUBLIC;

        """
    static let footer = """

        --
        -- PostgreSQL database dump complete
        --

        \\unrestrict lJk5cao8Vab8VOkepDcj8rEEDMkJJI0PKCKBgLw9tkic8leLWedwjbKCe4yhXeL


        """
    static let good = header + footer

    /// Runs `text` through a filter in chunks of `chunk` bytes; the output, or the refusal.
    func run(_ text: String, schema: String = "bienestar", policy: DumpFilter.Policy = .tenant, chunk: Int = 1 << 16) -> Result<String, DumpFilter.Refusal> {
        var filter = DumpFilter(schema: schema, policy: policy)
        let bytes = Array(text.utf8)
        var output = ByteBuffer()
        do throws(DumpFilter.Refusal) {
            var start = 0
            while start < bytes.count {
                var out = try filter.filter(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + chunk)]))
                output.writeBuffer(&out)
                start += chunk
            }
            try filter.end()
        } catch {
            return .failure(error)
        }
        return .success(String(buffer: output))
    }

    func refusal(_ text: String, policy: DumpFilter.Policy = .tenant) -> String? {
        if case .failure(let refusal) = run(text, policy: policy) { return refusal.reason }
        return nil
    }

    @Test func whatPgDumpWritesPassesWithoutItsRestrictLines() throws {
        let output = try run(Self.good).get()
        #expect(!output.contains("\\restrict") && !output.contains("\\unrestrict"))
        #expect(output.contains("1\tAna\t\\! echo data, not a command"))
        #expect(output == Self.good.replacingOccurrences(of: "\\restrict lJk5cao8Vab8VOkepDcj8rEEDMkJJI0PKCKBgLw9tkic8leLWedwjbKCe4yhXeL\n", with: "")
            .replacingOccurrences(of: "\\unrestrict lJk5cao8Vab8VOkepDcj8rEEDMkJJI0PKCKBgLw9tkic8leLWedwjbKCe4yhXeL\n", with: ""))
    }

    /// What a restore applies: the verified copy read again, without a second lexing pass, cut where the
    /// judging pass (chunked one way) found pg_dump's lines; it must be exactly what the filter lets through
    /// (chunked another way).
    @Test(arguments: [1, 2, 5, 64, 1 << 16])
    func theCutsFoundWhileJudgingGiveWhatTheFilterLetsThrough(chunk: Int) throws {
        // Also with the last line ended by the end of the stream, not a newline.
        let unterminated = String(Self.good.reversed().drop { $0 == "\n" }.reversed())
        #expect(unterminated.hasSuffix("eLWedwjbKCe4yhXeL"))
        for text in [Self.good, unterminated] {
            let expected = try run(text).get()
            var judge = DumpFilter(schema: "bienestar", policy: .tenant)
            judge.emitsOutput = false
            let input = Array(text.utf8)
            var start = 0
            while start < input.count {
                #expect(try judge.filter(ByteBuffer(bytes: input[start..<min(input.count, start + 7)])).readableBytes == 0)
                start += 7
            }
            try judge.end()
            #expect(judge.cuts.count == 2)
            var cuts = DumpCuts(judge.cuts)
            var output = ByteBuffer()
            start = 0
            while start < input.count {
                var piece = cuts.apply(ByteBuffer(bytes: input[start..<min(input.count, start + chunk)]))
                output.writeBuffer(&piece)
                start += chunk
            }
            #expect(String(buffer: output) == expected, "chunks of \(chunk)")
        }
    }

    /// A restore applied by a role that is not a superuser leaves pg_dump's `OWNER TO` statements out: exactly
    /// those, wherever the chunks split them.
    @Test(arguments: [1, 3, 1 << 16])
    func ownerStatementsAreFoundWhereverTheChunksSplitThem(chunk: Int) throws {
        var judge = DumpFilter(schema: "bienestar", policy: .tenant)
        judge.emitsOutput = false
        judge.recordsOwnerStatements = true
        let text = Self.good.replacingOccurrences(of: "ALTER TABLE bienestar.patients OWNER TO postgres;", with: "ALTER TABLE bienestar.patients OWNER TO \"Clinic Owner\";")
        let input = Array(text.utf8)
        var start = 0
        while start < input.count {
            _ = try judge.filter(ByteBuffer(bytes: input[start..<min(input.count, start + chunk)]))
            start += chunk
        }
        try judge.end()
        #expect(judge.ownerStatements.count == 3)  // with the CREATE SCHEMA of its own schema
        var cuts = DumpCuts(judge.cuts + judge.ownerStatements)
        let output = String(buffer: cuts.apply(ByteBuffer(bytes: input)))
        #expect(!output.contains("OWNER TO"))
        #expect(!output.contains("\\restrict"))
        var expected = try run(text).get()
            .replacingOccurrences(of: "\n\n\nALTER SCHEMA bienestar OWNER TO postgres;", with: "")
            .replacingOccurrences(of: "\n\nALTER TABLE bienestar.patients OWNER TO \"Clinic Owner\";", with: "")
        // CREATE SCHEMA goes with what lies between it and the statement before (comments, blank lines).
        let create = try #require(expected.range(of: "CREATE SCHEMA bienestar;"))
        let previous = try #require(expected.range(of: "SET row_security = off;"))
        expected.removeSubrange(previous.upperBound..<create.upperBound)
        #expect(output == expected)
        #expect(StatementPolicy.isOwnerStatement("ALTER FUNCTION bienestar.f(integer) OWNER TO app_user"))
        #expect(!StatementPolicy.isOwnerStatement("ALTER TABLE bienestar.t OWNER TO a, b"))
        #expect(!StatementPolicy.isOwnerStatement("ALTER TABLE bienestar.t ALTER COLUMN owner TO x"))
    }

    @Test func chunkBoundariesChangeNothing() throws {
        let whole = try run(Self.good).get()
        for size in [1, 2, 3, 7, 64] {
            #expect(try run(Self.good, chunk: size).get() == whole, "chunks of \(size)")
        }
        for size in [1, 3] {
            let attack = Self.header + "SELECT 1; \\! touch /tmp/x\n" + Self.footer
            #expect(throws: DumpFilter.Refusal.self, "chunks of \(size)") { try run(attack, chunk: size).get() }
        }
    }

    @Test(arguments: [
        ("\\! touch /tmp/owned\n", "meta-command"),
        ("\\c other_database\n", "meta-command"),
        ("\\connect postgres\n", "meta-command"),
        ("SET lock_timeout = 0; \\! touch /tmp/owned\n", "meta-command"),
        ("CREATE TABLE bienestar.x (a int); \\gexec\n", "meta-command"),
        ("  \\! indented\n", "meta-command"),
        ("COMMIT;\n", "transaction control"),
        ("ALTER TABLE bienestar.patients OWNER TO postgres; COMMIT;\n", "transaction control"),
        ("commit\n;\n", "transaction control"),
        ("END;\n", "transaction control"),
        ("ROLLBACK;\n", "transaction control"),
        ("BEGIN;\n", "transaction control"),
        ("START TRANSACTION;\n", "transaction control"),
        ("SAVEPOINT a;\n", "transaction control"),
        ("PREPARE TRANSACTION 'x';\n", "transaction control"),
        ("DO $$BEGIN PERFORM 1; END$$;\n", "DO"),
        ("CREATE ROLE evil SUPERUSER LOGIN;\n", "role"),
        ("ALTER ROLE postgres PASSWORD 'x';\n", "role"),
        ("ALTER USER postgres NOSUPERUSER;\n", "role"),
        ("GRANT pg_monitor TO bienestar_user;\n", "role membership"),
        ("GRANT pg_read_server_files TO bienestar_user;\n", "server-side file"),
        ("COPY bienestar.patients FROM PROGRAM 'touch /tmp/owned';\n", "COPY"),
        ("COPY bienestar.patients FROM '/etc/passwd';\n", "COPY"),
        ("COPY bienestar.patients TO '/tmp/leak';\n", "COPY"),
        ("COPY (SELECT * FROM mindcare.patients) TO stdout;\n", "COPY"),
        ("COPY mindcare.patients (id) FROM stdin;\n\\.\n", "outside schema"),
        ("COPY bienestar.patients (id) FROM stdin; \\! x\n1\n\\.\n", "same line"),
        ("SET search_path = mindcare, pg_catalog;\n", "search"),
        ("SELECT pg_catalog.set_config('search_path', 'mindcare', false);\n", "SELECT"),
        ("SET client_encoding = 'SJIS';\n", "client_encoding"),
        ("SET standard_conforming_strings = off;\n", "standard_conforming_strings"),
        ("SET ROLE postgres;\n", "role"),
        ("SET SESSION AUTHORIZATION postgres;\n", "session"),
        ("SELECT pg_catalog.setval('mindcare.patients_id_seq', 1, true);\n", "outside schema"),
        ("SELECT pg_read_file('/etc/passwd');\n", "SELECT"),
        ("UPDATE public.users_user SET is_superuser = true;\n", "UPDATE"),
        ("INSERT INTO mindcare.patients VALUES (1);\n", "INSERT"),
        ("DROP SCHEMA mindcare CASCADE;\n", "DROP"),
        ("TRUNCATE public.users_user;\n", "TRUNCATE"),
        ("CREATE EXTENSION dblink;\n", "EXTENSION"),
        ("CREATE EVENT TRIGGER t ON ddl_command_start EXECUTE FUNCTION bienestar.touch();\n", "EVENT"),
        ("ALTER SYSTEM SET archive_command = 'touch /tmp/owned';\n", "SYSTEM"),
        ("CREATE DATABASE other;\n", "DATABASE"),
        ("CREATE SCHEMA mindcare;\n", "that schema alone"),
        ("COMMENT ON TABLE bienestar.patients IS 'it\\'; \\! touch /tmp/owned\n", "meta-command"),
    ])
    func whatPgDumpNeverWritesRefusesTheWholeDump(statement: String, expected: String) {
        let reason = refusal(Self.header + statement + Self.footer)
        #expect(reason?.lowercased().contains(expected.lowercased()) == true, "\(statement): \(reason ?? "passed")")
    }

    @Test func anExtendedStringHidesNothing() {
        // E'…' takes backslash escapes: \' does not end it, so the meta-command is inside the string.
        #expect(refusal(Self.header + "COMMENT ON TABLE bienestar.patients IS E'it\\'s \\\\! fine';\n" + Self.footer) == nil)
        // A dollar quote with a tag ends only at the same tag.
        #expect(refusal(Self.header + "COMMENT ON TABLE bienestar.patients IS $a$ $$ \\! inside $a$;\n" + Self.footer) == nil)
        // A nested block comment ends at its last */.
        #expect(refusal(Self.header + "/* a /* b */ \\! still inside */\n" + Self.footer) == nil)
        #expect(refusal(Self.header + "/* a /* b */ */ \\! outside\n" + Self.footer) != nil)
    }

    @Test func anIncompleteDumpIsRefused() {
        let truncated = String(Self.good.prefix(Self.good.utf8.count - Self.footer.utf8.count))
        #expect(refusal(truncated)?.contains("incomplete") == true)
        let midCopy = Self.header.components(separatedBy: "2\tBea").first!
        #expect(refusal(midCopy)?.contains("COPY") == true)
        let unclosed = Self.header + "CREATE TABLE bienestar.x (a int)"
        #expect(refusal(unclosed)?.contains("incomplete") == true)
        // No \unrestrict after a \restrict: cut off after the closing comment.
        let noUnrestrict = Self.header + "\n--\n-- PostgreSQL database dump complete\n--\n\n"
        #expect(refusal(noUnrestrict)?.contains("unrestrict") == true)
        // A statement after the closing line.
        let after = Self.header + "\n--\n-- PostgreSQL database dump complete\n--\nCREATE TABLE bienestar.late (a int);\n\\unrestrict lJk5cao8Vab8VOkepDcj8rEEDMkJJI0PKCKBgLw9tkic8leLWedwjbKCe4yhXeL\n"
        #expect(refusal(after) != nil)
    }

    @Test func anUnrestrictWithAnotherKeyOrASecondRestrictIsRefused() {
        let other = Self.good.replacingOccurrences(of: "\\unrestrict lJk5", with: "\\unrestrict XXXX")
        #expect(refusal(other)?.contains("meta-command") == true)
        let second = Self.header + "\\restrict again\n" + Self.footer
        #expect(refusal(second)?.contains("meta-command") == true)
    }

    @Test func aDumpWithoutRestrictLinesStillPasses() throws {
        // pg_dump before 15.14 wrote none.
        let old = Self.good.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
        _ = try run(old).get()
        #expect(refusal(old.replacingOccurrences(of: "SET row_security = off;", with: "SET row_security = off;\n\\! id")) != nil)
    }

    @Test func theSharedDumpMayCreateExtensionsAClinicsMayNot() {
        let text = Self.header.replacingOccurrences(of: "bienestar", with: "public") + "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;\n" + Self.footer
        if case .failure(let refusal) = run(text, schema: "public", policy: .shared) { Issue.record("\(refusal)") }
        if case .success = run(text, schema: "public", policy: .tenant) { Issue.record("a clinic's dump created an extension") }
    }

    @Test func afterRestoreScriptsAreStatementsOnly() {
        #expect(refusal("DELETE FROM public.tenants_clinic WHERE schema_name <> 'bienestar';\n", policy: .afterRestore) == nil)
        #expect(refusal("DELETE FROM public.t WHERE note = 'a; \\! b';", policy: .afterRestore) == nil)
        #expect(refusal("DELETE FROM public.t; COMMIT;", policy: .afterRestore)?.contains("transaction") == true)
        #expect(refusal("DELETE FROM public.t; \\! touch /tmp/x", policy: .afterRestore)?.contains("meta-command") == true)
        #expect(refusal("\\q", policy: .afterRestore)?.contains("meta-command") == true)
        #expect(refusal("DO $$ BEGIN END $$;", policy: .afterRestore) != nil)
        #expect(refusal("COPY public.t FROM PROGRAM 'id';", policy: .afterRestore) != nil)
        #expect(refusal("SELECT pg_read_file('/etc/passwd');", policy: .afterRestore) != nil)
        #expect(refusal("DELETE FROM public.t", policy: .afterRestore)?.contains("incomplete") == true)
    }
}

/// Found by the adversarial trial of issue 17: shapes that got past the first filter.
@Suite struct DumpFilterTrialTests {
    func refusal(_ text: String, forbidden: Set<String> = [], policy: DumpFilter.Policy = .tenant) -> String? {
        var filter = DumpFilter(schema: "bienestar", policy: policy)
        filter.forbiddenSchemas = forbidden
        do throws(DumpFilter.Refusal) {
            _ = try filter.filter(ByteBuffer(string: text))
            try filter.end()
        } catch {
            return error.reason
        }
        return nil
    }

    static let body = DumpFilterTests.header

    @Test func turningStandardConformingStringsOffAtRunTimeIsRefused() {
        // With the setting off, psql reads 'a\'' as an escaped quote and runs the COMMIT after it.
        let attack = "CREATE TABLE bienestar.zz AS SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false) AS v;\n"
            + "COMMENT ON SCHEMA bienestar IS 'a\\'' ; COMMIT; CREATE ROLE owned LOGIN; BEGIN; --';\n"
        #expect(refusal(Self.body + attack + DumpFilterTests.footer) != nil)
        #expect(refusal("SELECT pg_catalog.set_config('standard_conforming_strings','off',false);\nSELECT 'a\\'' ; COMMIT; --';", policy: .afterRestore) != nil)
        #expect(refusal("SET standard_conforming_strings TO off;", policy: .afterRestore) != nil)
    }

    @Test func aNulByteIsRefused() {
        let attack = "COMMENT ON SCHEMA bienestar IS 'x' /* \u{0} */ '\n*/ ; COMMIT; CREATE ROLE owned; BEGIN; SELECT 1 \u{0}';\n;\n"
        #expect(refusal(Self.body + attack + DumpFilterTests.footer)?.contains("NUL") == true)
    }

    @Test func createTableAsAndServerFilesAreRefused() {
        #expect(refusal(Self.body + "CREATE TABLE bienestar.zz_file AS SELECT pg_catalog.pg_read_file('/etc/hostname') AS f;\n" + DumpFilterTests.footer) != nil)
        #expect(refusal(Self.body + "CREATE TABLE bienestar.zz_leak AS SELECT 1 AS a;\n" + DumpFilterTests.footer)?.contains("AS") == true)
        // A function whose body runs a server program (caught by name; built at run time it would not be: the
        // signature is the boundary for that).
        let function = "CREATE FUNCTION bienestar.zz_f() RETURNS integer LANGUAGE plpgsql\n    AS $$BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch /tmp/owned'''; RETURN 1; END$$;\n"
        #expect(refusal(Self.body + function + DumpFilterTests.footer) != nil)
    }

    @Test func namingAnotherClinicsSchemaIsRefused() {
        for statement in [
            "COMMENT ON TABLE mindcare.patients IS 'x';\n",
            "ALTER TABLE mindcare.patients ALTER COLUMN full_name SET DEFAULT 'pwned';\n",
            "CREATE VIEW bienestar.v AS SELECT * FROM mindcare.patients;\n",
        ] {
            #expect(refusal(Self.body + statement + DumpFilterTests.footer, forbidden: ["mindcare"])?.contains("mindcare") == true, "\(statement)")
        }
        // public (shared) and the clinic's own schema are fine.
        #expect(refusal(Self.body + "ALTER TABLE ONLY bienestar.patients ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES public.users_user(id);\n" + DumpFilterTests.footer, forbidden: ["mindcare"]) == nil)
    }
}

/// Found by the second review of issue 17's filter against psqlscan.l: each hid a COMMIT from the first
/// hardened filter while psql ran it.
@Suite struct DumpFilterLexerReviewTests {
    func refusal(_ statement: String, forbidden: Set<String> = ["mindcare"]) -> String? {
        var filter = DumpFilter(schema: "bienestar", policy: .tenant)
        filter.forbiddenSchemas = forbidden
        do throws(DumpFilter.Refusal) {
            _ = try filter.filter(ByteBuffer(string: DumpFilterTests.header + statement + DumpFilterTests.footer))
            try filter.end()
        } catch {
            return error.reason
        }
        return nil
    }

    static let payload = "COMMIT;\nCREATE TABLE public.review_marker(a int);\n"

    @Test func aStringContinuedOnTheNextLineIsRefused() {
        #expect(refusal("COMMENT ON SCHEMA bienestar IS E'x'\n'\\\\'';\n" + Self.payload + "-- ';\n")?.contains("continued") == true)
        #expect(refusal("COMMENT ON SCHEMA bienestar IS 'x' -- c\n'y';\n")?.contains("continued") == true)
        #expect(refusal("COMMENT ON SCHEMA bienestar IS 'x''y';\n") == nil)
    }

    @Test func aCarriageReturnEndsALineComment() {
        #expect(refusal("-- note\rCOMMIT;\rCREATE TABLE public.review_marker(a int);\n") != nil)
    }

    @Test func aLongDollarTagIsRefused() {
        let tag = String(repeating: "A", count: 65)
        #expect(refusal("COMMENT ON SCHEMA bienestar IS $\(tag)$ ' $\(tag)$;\n" + Self.payload + "-- ';\n") != nil)
    }

    @Test func aPsqlVariableIsNotCountedAsCase() {
        let function = "CREATE FUNCTION bienestar.review_f(a integer[]) RETURNS integer[]\n    LANGUAGE sql\n    BEGIN ATOMIC\n"
            + "     SELECT a[1:case when true then 1 end] AS begin;\n    END;\n" + Self.payload + "END;\n"
        #expect(refusal(function) != nil)
        // Casts are not variables.
        #expect(refusal("ALTER TABLE ONLY bienestar.patients ALTER COLUMN note SET DEFAULT 'x'::text;\n") == nil)
    }

    /// psql 15 reads a word run into a number as one "junk" token: `1E'\'` is not an E'…' string to it, and
    /// `1begin` no BEGIN. The filter refuses both; numbers as pg_dump writes them pass.
    @Test func aNumberRunIntoAWordIsRefusedAndNumbersAsPgDumpWritesThemPass() {
        #expect(refusal("COMMENT ON TABLE bienestar.patients IS 1E'\\'; SELECT 42; --';\n")?.contains("number") == true)
        #expect(refusal("COMMENT ON TABLE bienestar.patients IS 1x'00';\n")?.contains("number run into a word") == true)
        #expect(refusal("CREATE FUNCTION bienestar.f() RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT 1begin; END;\n") != nil)
        #expect(refusal("CREATE TABLE bienestar.z (a integer DEFAULT 0x1F);\n") != nil)
        #expect(refusal("CREATE TABLE bienestar.z (a double precision DEFAULT 1e);\n")?.contains("unfinished exponent") == true)
        for ok in ["1", "2.5", "1e+30", "1.5E-7", "(1)::integer", "'1'::numeric", "10,2"] {
            #expect(refusal("CREATE TABLE bienestar.z (a numeric(10,2) DEFAULT \(ok));\n") == nil, "\(ok)")
        }
    }

    @Test func unicodeEscapedNamesAreRefused() {
        #expect(refusal("COMMENT ON TABLE U&\"m\\0069ndcare\".patients IS 'x';\n") != nil)
        #expect(refusal("CREATE TABLE bienestar.z (a integer CHECK (pg_catalog.U&\"set\\005fconfig\"(U&'standard\\005fconforming\\005fstrings', 'off', false) = 'off'));\n") != nil)
        #expect(refusal("CREATE MATERIALIZED VIEW bienestar.mv AS\n SELECT 1 AS f;\n") != nil)
        #expect(refusal("CREATE MATERIALIZED VIEW bienestar.mv AS\n SELECT 1 AS f\n  WITH NO DATA;\n") == nil)
    }

    @Test(arguments: ["\"mindcare\".patients", "MINDCARE.patients", "mindcare . patients", "MindCare.patients"])
    func anotherClinicsSchemaIsFoundInEveryForm(name: String) {
        #expect(refusal("COMMENT ON TABLE \(name) IS 'x';\n")?.contains("mindcare") == true, "\(name)")
    }
}
