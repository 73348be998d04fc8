import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct BackupKeyTests {
    let date = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC

    @Test func aTenantKeyHasTheSeedsShape() {
        let key = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: date, suffix: ".sql.zst")
        #expect(key.key == "backups/bienestar/backup-sql-bienestar-2026-11-29-021530.sql.zst")
        #expect(key.manifestKey == "backups/bienestar/backup-sql-bienestar-2026-11-29-021530.sql.zst.manifest.json")
        #expect(BackupKey(prefix: "prod/", area: .shared, schema: "public", timestamp: date, suffix: ".sql").key
            == "prod/shared/public/backup-sql-public-2026-11-29-021530.sql")
    }

    @Test(arguments: ["bienestar", "Clínica \"Sur\"", "a*", "a.b", "..", "a/b", "sp ace", "100%", "-_", "ñ"])
    func namesRoundTripAndNeverEscapeTheirFolder(schema: String) throws {
        let encoded = BackupKey.encode(schema)
        #expect(!encoded.contains("/") && !encoded.contains(".") && !encoded.contains(" "))
        #expect(BackupKey.decode(encoded) == schema)
        let key = BackupKey(prefix: "p/", area: .tenant, schema: schema, timestamp: date, suffix: ".sql.gz")
        let parsed = try #require(BackupKey.parse(key.key, prefix: "p/"))
        #expect(parsed == key)
    }

    @Test(arguments: [
        "backups/t/notes.txt",
        "backups/other-app/x",
        "backups/t/backup-sql-t-2026-13-01-000000.sql",
        "backups/t/backup-sql-t-2026-02-30-000000.sql",
        "backups/t/backup-sql-u-2026-01-01-000000.sql",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.manifest.json",
        "backups/t/sub/backup-sql-t-2026-01-01-000000.sql",
        "backups/a.b/backup-sql-a.b-2026-01-01-000000.sql",
        "elsewhere/t/backup-sql-t-2026-01-01-000000.sql",
        // Sidecars and copies beside real backups (issue 10, point 1): never backups.
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.bak",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.sha256",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.gz.md5",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.tmp",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.manifest.json.bak",
        "backups/t/backup-sql-t-2026-01-01-000000.txt",
        "backups/t/backup-sql-t-2026-01-01-000000.",
        "backups/t/backup-sql-t-2026-01-01-000000",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.age.zst",
        "backups/t/backup-sql-t-2026-01-01-000000.zst",
        "backups/t/backup-sql-t-2026-01-01-000000.SQL",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.gz",
        "backups/t/backup-sql-t-2026-01-01-000000-copy.sql",
    ])
    func keysThatAreNotOurBackupsDoNotParse(key: String) {
        #expect(BackupKey.parse(key, prefix: "") == nil)
    }

    @Test(arguments: [".sql", ".sql.zst", ".sql.gz", ".sql.age", ".sql.zst.age", ".sql.gz.age", ".dump", ".dump.zst", ".dump.age"])
    func everyDocumentedSuffixParses(suffix: String) throws {
        let key = "backups/t/backup-sql-t-2026-01-01-000000\(suffix)"
        let parsed = try #require(BackupKey.parse(key, prefix: ""))
        #expect(parsed.suffix == suffix)
        #expect(parsed.key == key)
    }

    @Test func aManifestBelongsToExactlyOneBackup() throws {
        let backup = "backups/t/backup-sql-t-2026-01-01-000000.sql.zst"
        #expect(BackupKey.parseManifest(backup + ".manifest.json", prefix: "")?.key == backup)
        #expect(BackupKey.parseManifest(backup, prefix: "") == nil)
        #expect(BackupKey.parseManifest(backup + ".bak.manifest.json", prefix: "") == nil)
        #expect(BackupKey.parseManifest(backup + ".manifest.json.manifest.json", prefix: "") == nil)
    }

    @Test func theOldSystemsKeysParse() throws {
        let parsed = try #require(BackupKey.parse("backups/mindcare/backup-sql-mindcare-2025-03-01-020000.sql", prefix: ""))
        #expect(parsed.schema == "mindcare")
        #expect(parsed.suffix == ".sql")
        #expect(BackupKey.format(parsed.timestamp) == "2025-03-01-020000")
    }

    @Test func theFolderEndsWithASlash() {
        #expect(BackupKey.folder(prefix: "", area: .tenant, schema: "clinic") == "backups/clinic/")
    }
}

@Suite struct PartSizePlannerTests {
    let planner = PartSizePlanner()

    @Test func smallSchemasUseTheDefault() throws {
        #expect(try planner.partSize(estimatedBytes: 0) == 8 << 20)
        #expect(try planner.partSize(estimatedBytes: 10 << 30) == 8 << 20)  // 40 GiB with margin / 10,000 < 8 MiB
    }

    @Test func largeSchemasGetPartsThatFitInTenThousand() throws {
        let estimate: Int64 = 100 << 30  // 100 GiB → 400 GiB with margin
        let size = try planner.partSize(estimatedBytes: estimate)
        #expect(size > 8 << 20)
        #expect(Int64(size) * 10_000 >= estimate * 4)
        #expect(size % (1 << 20) == 0)
    }

    @Test func aSchemaTooLargeEvenForFiveGiBPartsFailsEarly() {
        #expect {
            try planner.partSize(estimatedBytes: 20 << 40)  // 20 TiB × 4 > 5 GiB × 10,000
        } throws: { error in
            (error as? PartSizePlanner.PlanError).map { "\($0)".contains("backup.part_size") } ?? false
        }
    }

    @Test func aConfiguredSizeIsUsedAndChecked() throws {
        #expect(try PartSizePlanner(configuredPartSize: 16 << 20).partSize(estimatedBytes: 1 << 30) == 16 << 20)
        #expect(throws: PartSizePlanner.PlanError.partSizeOutOfRange(1 << 20)) {
            try PartSizePlanner(configuredPartSize: 1 << 20).partSize(estimatedBytes: 0)
        }
        #expect(throws: PartSizePlanner.PlanError.self) {
            try PartSizePlanner(configuredPartSize: 5 << 20).partSize(estimatedBytes: 100 << 30)
        }
    }
}

@Suite struct CopyRowCounterTests {
    static let dump = """
        --
        -- PostgreSQL database dump
        --
        COPY "Clínica ""Sur"" x".patients (id, full_name, note) FROM stdin;
        1\tAna\tline one\\nline two
        2\tLuis\t\\.not the end
        3\tEva\t\\N
        \\.

        COPY bienestar.empty (id) FROM stdin;
        \\.
        COPY bienestar.appointments FROM stdin;
        10\t1
        \\.
        SELECT pg_catalog.setval('x', 3, true);

        """

    @Test(arguments: [1, 2, 3, 7, 64, 100_000])
    func countsRowsWhateverTheChunking(chunkSize: Int) {
        var counter = CopyRowCounter()
        let bytes = Array(Self.dump.utf8)
        var offset = 0
        while offset < bytes.count {
            counter.consume(ByteBuffer(bytes: bytes[offset..<min(offset + chunkSize, bytes.count)]))
            offset += chunkSize
        }
        #expect(counter.rowCounts == ["\"Clínica \"\"Sur\"\" x\".patients": 3, "bienestar.empty": 0, "bienestar.appointments": 1])
    }
}

@Suite struct PgDumpArgumentsTests {
    @Test func theSchemaIsAnExactQuotedPatternWithStrictNames() {
        let arguments = PgDumpArguments().arguments(schema: "a*\"b", shared: false, database: nil)
        #expect(arguments.contains("--schema=\"a*\"\"b\""))
        #expect(arguments.contains("--strict-names"))
        #expect(arguments.contains("--format=plain"))
        #expect(!arguments.contains { $0.hasPrefix("--extension") })
    }

    @Test func sharedSchemasBringTheirExtensions() {
        #expect(PgDumpArguments().arguments(schema: "public", shared: true, database: nil).contains("--extension=*"))
    }

    @Test func theCyclesSnapshotIsPassedWhenThereIsOne() {
        #expect(PgDumpArguments().arguments(schema: "s", shared: false, database: nil, snapshot: "00000003-0000001B-1").contains("--snapshot=00000003-0000001B-1"))
        #expect(!PgDumpArguments().arguments(schema: "s", shared: false, database: nil).contains { $0.hasPrefix("--snapshot") })
    }

    @Test func customFormatIsUncompressedAndOptionsFollow() {
        let arguments = PgDumpArguments(format: .custom, extraOptions: ["--no-owner"], lockWaitTimeoutSeconds: 30)
            .arguments(schema: "s", shared: false, database: nil)
        #expect(arguments.suffix(4) == ["--format=custom", "--compress=0", "--lock-wait-timeout=30s", "--no-owner"])
    }

    @Test func aConnectionStringBecomesVariablesNotArguments() throws {
        let variables = try DumpConnection.variables(for: "postgresql://backup:s3cr%40t@db.internal:6543/clinics?sslmode=require")
        #expect(variables["PGHOST"] == "db.internal")
        #expect(variables["PGPORT"] == "6543")
        #expect(variables["PGDATABASE"] == "clinics")
        #expect(variables["PGUSER"] == "backup")
        #expect(variables["PGPASSWORD"] == "s3cr@t")
        #expect(variables["PGSSLMODE"] == "require")
        #expect(throws: DumpConnection.InvalidConnectionString.self) { try DumpConnection.variables(for: "host=db bogus_keyword=1") }
    }
}

@Suite struct CompressionTests {
    static func sample(_ count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for index in 0..<count { buffer.writeString("row \(index)\tpatient \(index % 97)\tnote \(index * 7919 % 1000)\n") }
        return buffer
    }

    @Test(arguments: [Compression.zstd, .gzip, .none])
    func compressedStreamsDecompressToTheSameBytes(compression: Compression) throws {
        let input = Self.sample(50_000)
        var compressor = try compression.makeCompressor(level: compression.defaultLevel)
        var compressed = ByteBuffer()
        var slice = input
        while slice.readableBytes > 0 {
            var part = try compressor.process(slice.readSlice(length: min(65_536, slice.readableBytes))!)
            compressed.writeBuffer(&part)
        }
        var tail = try compressor.finish()
        compressed.writeBuffer(&tail)
        if compression != .none { #expect(compressed.readableBytes < input.readableBytes / 3) }
        var decompressor = try compression.makeDecompressor()
        var output = ByteBuffer()
        var compressedSlice = compressed
        while compressedSlice.readableBytes > 0 {
            var part = try decompressor.process(compressedSlice.readSlice(length: min(4096, compressedSlice.readableBytes))!)
            output.writeBuffer(&part)
        }
        _ = try decompressor.finish()
        #expect(output == input)
    }

    @Test(arguments: [Compression.zstd, .gzip])
    func aTruncatedStreamIsAnError(compression: Compression) throws {
        var compressor = try compression.makeCompressor(level: 1)
        var compressed = try compressor.process(Self.sample(10_000))
        var tail = try compressor.finish()
        compressed.writeBuffer(&tail)
        var decompressor = try compression.makeDecompressor()
        _ = try decompressor.process(compressed.getSlice(at: 0, length: compressed.readableBytes / 2)!)
        #expect(throws: StreamTransformError.self) { try decompressor.finish() }
    }

    @Test func fileSuffixesFollowFormatAndCompression() {
        #expect(BackupSettings().fileSuffix == ".sql.zst")
        #expect(BackupSettings(compression: .gzip).fileSuffix == ".sql.gz")
        #expect(BackupSettings(compression: .none).fileSuffix == ".sql")
        #expect(BackupSettings(format: .custom).fileSuffix == ".dump.zst")
    }
}

@Suite struct PgDumpFailureMessageTests {
    @Test func pgDumpsAnswerToOurOwnStopIsLeftOut() {
        let stderr = "pg_dump: dumping contents of table \"clinic.visits\"\npg_dump: terminated by user\n"
        let timeout = PgDumpFailure(reason: .noOutputTimeout(.seconds(600)), stderr: stderr)
        #expect(!timeout.description.contains("terminated by user"))
        #expect(timeout.description.contains("backup.no_output_timeout"))
        #expect(!PgDumpFailure(reason: .cancelled, stderr: stderr).description.contains("terminated by user"))
        // Someone else stopped it: pg_dump's words are the evidence, and stay.
        #expect(PgDumpFailure(reason: .exited(1), stderr: stderr).description.contains("terminated by user"))
    }
}
