import Foundation
import Logging
import Testing

@testable import TenantBackup

@Suite struct ExampleConfigurationTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/tenant-backup.example.yaml").path

    /// The example documents every setting with its default: loading it changes nothing.
    @Test func theExampleFileParsesAndStatesTheDefaults() throws {
        let loader = SettingsLoader(environment: [:], defaultConfigPath: "/nonexistent")
        let fromExample = try loader.load(configFile: Self.example)
        let defaults = try loader.load(yaml: "")
        #expect(fromExample == defaults)
    }

    @Test func theExampleMentionsEveryTopLevelSection() throws {
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        for section in ["postgres:", "tenants:", "s3:", "backup:", "retention:", "schedule:", "daemon:", "metrics:", "logging:"] {
            #expect(text.contains("\n\(section)\n") || text.hasPrefix("\(section)\n"), "\(section)")
        }
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func source(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The names `text` spells as string literals (`"TENANT_BACKUP_…"`, `"AWS_…"`, `"DATABASE_URL"`).
    static func variables(in text: String, quoted: Bool) -> Set<String> {
        let pattern = quoted ? #""((TENANT_BACKUP|AWS)_[A-Z0-9_]+|DATABASE_URL)""# : #"`((TENANT_BACKUP|AWS)_[A-Z0-9_]+|DATABASE_URL)`"#
        let expression = try! NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        return Set(expression.matches(in: text, range: range).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } })
    }

    /// Every environment variable the settings loader reads is in the README's configuration table and in the
    /// loader's own table, and the README's table names none it does not read (issue 20: the table lacked six).
    @Test func everyEnvironmentVariableTheLoaderReadsIsDocumentedAndNoOtherIs() throws {
        let loader = try Self.source("Sources/TenantBackup/Config/SettingsLoader.swift")
        let code = loader.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("///") }.joined(separator: "\n")
        let read = Self.variables(in: code, quoted: true)
        let readme = try Self.source("README.md")
        let table = readme[readme.range(of: "## Configuration")!.lowerBound..<readme.range(of: "The YAML file is")!.lowerBound]
        let documented = Self.variables(in: String(table), quoted: false)
        let loaderTable = Self.variables(in: loader.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("///") }.joined(separator: "\n"), quoted: false)
        #expect(read.count > 40, "the loader's names were not found: \(read.sorted())")
        #expect(read.subtracting(documented).isEmpty, "read but not in the README's table: \(read.subtracting(documented).sorted())")
        #expect(documented.subtracting(read).isEmpty, "in the README's table but never read: \(documented.subtracting(read).sorted())")
        #expect(read.subtracting(loaderTable).isEmpty, "read but not in SettingsLoader's table: \(read.subtracting(loaderTable).sorted())")
    }

    /// Every key the YAML reader accepts is in the example file (which "documents every setting").
    @Test func everyYAMLKeyIsInTheExampleFile() throws {
        let reader = try Self.source("Sources/TenantBackup/Config/YAMLSettingsReader.swift")
        let example = try String(contentsOfFile: Self.example, encoding: .utf8)
        var keys: Set<String> = []
        var rest = Substring(reader)
        while let start = rest.range(of: ".only([") {
            let end = rest[start.upperBound...].range(of: "])")!
            let list = rest[start.upperBound..<end.lowerBound]
            for piece in list.split(separator: ",") {
                let key = piece.trimmingCharacters(in: CharacterSet(charactersIn: " \n\"")); if !key.isEmpty { keys.insert(key) }
            }
            rest = rest[end.upperBound...]
        }
        #expect(keys.count > 50, "the reader's keys were not found: \(keys.sorted())")
        let lines = example.split(separator: "\n").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " #")) }
        let missing = keys.filter { key in !lines.contains { $0.hasPrefix(key + ":") } }
        #expect(missing.isEmpty, "keys the reader accepts that the example never shows: \(missing.sorted())")
    }
}
