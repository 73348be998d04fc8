import Foundation
import NIOCore
import Testing

@testable import TenantBackup

/// ``BackupFormat`` is the one place a backup suffix is spelled and parsed, and the one builder of the write
/// stages and their inverse.
@Suite struct BackupFormatTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    /// Every Swift file under Sources but BackupFormat.swift, with comments left out (a comment may explain a
    /// name; code may not spell one).
    static func codeLines() throws -> [(file: String, line: Int, text: String)] {
        var found: [(String, Int, String)] = []
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        for case let url as URL in files where url.pathExtension == "swift" && url.lastPathComponent != "BackupFormat.swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for (index, line) in text.components(separatedBy: "\n").enumerated() {
                let code = line.components(separatedBy: "//").first ?? ""
                found.append((url.path.replacingOccurrences(of: sources.path + "/", with: ""), index + 1, code))
            }
        }
        return found
    }

    @Test func noBackupSuffixIsSpelledInSourcesOutsideBackupFormat() throws {
        // A suffix in a string literal: `".zst"`, `"….sql.gz"`, `"\(x).age"`...
        let pattern = try NSRegularExpression(pattern: #""[^"]*\.(sql|dump|zst|gz|age)(\.[a-z]+)*(\[[^"]*\])?""#)
        var offenders: [String] = []
        for (file, line, code) in try Self.codeLines() {
            let range = NSRange(code.startIndex..., in: code)
            if pattern.firstMatch(in: code, range: range) != nil { offenders.append("\(file):\(line): \(code.trimmingCharacters(in: .whitespaces))") }
        }
        #expect(offenders.isEmpty, "backup suffixes are spelled only in BackupFormat:\n\(offenders.joined(separator: "\n"))")
    }

    @Test func theCheckFindsASuffixWhereOneIsSpelled() throws {
        let pattern = try NSRegularExpression(pattern: #""[^"]*\.(sql|dump|zst|gz|age)(\.[a-z]+)*(\[[^"]*\])?""#)
        for code in [#"if key.hasSuffix(".zst") {"#, #"let name = "backup.sql.gz""#, #"x.replacingOccurrences(of: ".age", with: "")"#] {
            #expect(pattern.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) != nil, "\(code)")
        }
    }

    @Test func everySuffixParsesBackToItsFormat() {
        #expect(BackupFormat.all.count == 12)
        #expect(BackupFormat.suffixes.count == 12)
        for format in BackupFormat.all {
            #expect(BackupFormat(suffix: format.suffix) == format)
        }
        #expect(BackupFormat(suffix: ".sql.zst") == BackupFormat(dump: .plain, compression: .zstd))
        #expect(BackupFormat(suffix: ".dump.gz.age") == BackupFormat(dump: .custom, compression: .gzip, encryption: .age))
        for foreign in ["", ".zst", ".sql.zst.bak", ".sql.age.zst", ".SQL", ".sql.zst.manifest.json", "sql"] {
            #expect(BackupFormat(suffix: foreign) == nil, "\(foreign)")
        }
    }

    @Test func theManifestRecordsTheFormatAndReadsItBack() {
        for format in BackupFormat.all {
            let fields = format.manifestFields
            #expect(BackupFormat(manifestFormat: fields.format, compression: fields.compression, encryption: fields.encryption) == format)
        }
        #expect(BackupFormat(manifestFormat: "directory", compression: "zstd", encryption: nil) == nil)
        #expect(BackupFormat(manifestFormat: "plain", compression: "lz4", encryption: nil) == nil)
    }

    @Test(arguments: BackupFormat.all.filter(\.isReadable))
    func theReadStagesUndoTheWriteStages(format: BackupFormat) throws {
        let dump = ByteBuffer(string: String(repeating: "COPY clinic.patients (id, name) FROM stdin;\n1\tAna\n\\.\n", count: 4000))
        var write = StageChain(try format.makeWriteStages())
        var stored = ByteBuffer()
        var rest = dump
        while rest.readableBytes > 0 {
            var out = try write.process(rest.readSlice(length: min(1000, rest.readableBytes))!)
            stored.writeBuffer(&out)
        }
        var tail = try write.finish()
        stored.writeBuffer(&tail)
        if format.compression != .none { #expect(stored.readableBytes < dump.readableBytes / 10) }
        var read = StageChain(try format.makeReadStages())
        var back = try read.process(stored)
        var end = try read.finish()
        back.writeBuffer(&end)
        #expect(back == dump)
    }

    @Test func anEncryptedFormatIsNeverReadAsPlainNorWrittenYet() {
        let encrypted = BackupFormat(dump: .plain, compression: .zstd, encryption: .age)
        #expect(!encrypted.isReadable)
        #expect(throws: BackupFormatError.self) { try encrypted.makeReadStages() }
        #expect(throws: BackupFormatError.self) { try encrypted.makeWriteStages() }
        #expect(encrypted.contentType == "application/octet-stream")
    }

    @Test func theDecodedNameDropsTheStagesOnly() {
        #expect(BackupFormat.decodedFileName("backup-sql-a-2026-01-01-000000.sql.zst") == "backup-sql-a-2026-01-01-000000.sql")
        #expect(BackupFormat.decodedFileName("backup-sql-a-2026-01-01-000000.dump.gz") == "backup-sql-a-2026-01-01-000000.dump")
        #expect(BackupFormat.decodedFileName("backup-sql-a-2026-01-01-000000.sql") == "backup-sql-a-2026-01-01-000000.sql")
        #expect(BackupFormat.decodedFileName("notes.txt") == "notes.txt")
        let key = BackupKey(prefix: "p/", area: .tenant, schema: "clinic", timestamp: Date(timeIntervalSince1970: 0), format: BackupFormat(dump: .plain, compression: .gzip))
        #expect(key.fileName == "backup-sql-clinic-1970-01-01-000000.sql.gz")
        #expect(key.decodedFileName == "backup-sql-clinic-1970-01-01-000000.sql")
    }

    @Test func theSettingsNameTheFormatTheyWrite() {
        #expect(BackupSettings().backupFormat == BackupFormat(dump: .plain, compression: .zstd))
        #expect(BackupSettings(format: .custom).backupFormat.suffix == ".dump.zst")
    }
}
