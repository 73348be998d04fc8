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

    /// The settings table's names, and the few the loader reads outside it (the file's own variable).
    static var environmentNames: Set<String> {
        Set(SettingDefinition.all.flatMap(\.environment)).union(["TENANT_BACKUP_CONFIG"])
    }

    /// Every environment variable of the settings table is in the README's configuration table, and the
    /// README's table names none the table does not declare (issue 20: the README lacked six). The loader
    /// spells no variable of its own beyond the file's and the S3 credentials (which the table declares too).
    @Test func everyEnvironmentVariableIsDocumentedAndNoOtherIs() throws {
        let readme = try Self.source("README.md")
        let table = readme[readme.range(of: "## Configuration")!.lowerBound..<readme.range(of: "The YAML file is")!.lowerBound]
        let documented = Self.variables(in: String(table), quoted: false)
        let declared = Self.environmentNames
        #expect(declared.count > 40, "\(declared.sorted())")
        #expect(declared.subtracting(documented).isEmpty, "declared but not in the README's table: \(declared.subtracting(documented).sorted())")
        #expect(documented.subtracting(declared).isEmpty, "in the README's table but declared by no setting: \(documented.subtracting(declared).sorted())")
        let loader = try Self.source("Sources/TenantBackup/Config/SettingsLoader.swift")
        let code = loader.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("///") }.joined(separator: "\n")
        let spelled = Self.variables(in: code, quoted: true)
        #expect(spelled.subtracting(declared).isEmpty, "read by the loader outside the table: \(spelled.subtracting(declared).sorted())")
        let names = SettingDefinition.all.flatMap(\.environment)
        #expect(names.count == Set(names).count, "a variable set by two settings: \(names.sorted())")
    }

    /// The example file's settings, by section: `key: value` lines, commented out or not, two spaces in.
    static func exampleKeys() throws -> [String] {
        let example = try String(contentsOfFile: Self.example, encoding: .utf8)
        let setting = try NSRegularExpression(pattern: #"^  (?:# )?([a-z_]+):(?: |$)"#)
        let section = try NSRegularExpression(pattern: #"^([a-z0-9_]+):"#)
        var current: String?
        var keys: [String] = []
        for line in example.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let range = NSRange(line.startIndex..., in: line)
            if let match = section.firstMatch(in: line, range: range), let name = Range(match.range(at: 1), in: line) {
                current = String(line[name])
            } else if let match = setting.firstMatch(in: line, range: range), let name = Range(match.range(at: 1), in: line), let current {
                keys.append("\(current).\(line[name])")
            }
        }
        return keys
    }

    /// Every setting of the table is in the example file (which "documents every setting"), under its section,
    /// and the example names no key the table does not declare.
    @Test func theExampleFileShowsEverySettingAndNoOther() throws {
        let shown = Set(try Self.exampleKeys())
        let declared = Set(SettingDefinition.all.map(\.key))
        #expect(declared.count > 70, "\(declared.sorted())")
        #expect(declared.subtracting(shown).isEmpty, "settings the example never shows: \(declared.subtracting(shown).sorted())")
        #expect(shown.subtracting(declared).isEmpty, "keys in the example that no setting declares: \(shown.subtracting(declared).sorted())")
    }

    /// Every setting has its documentation line, and a key of `section.name` form, once.
    @Test func everySettingIsDocumentedOnce() {
        let keys = SettingDefinition.all.map(\.key)
        #expect(keys.count == Set(keys).count)
        for definition in SettingDefinition.all {
            #expect(definition.key.split(separator: ".").count == 2, "\(definition.key)")
            #expect(definition.documentation.count > 10, "\(definition.key)")
        }
    }

    /// Each source reads every setting the table gives it: a value for each through the environment lands in
    /// the same place as through the file.
    @Test func theEnvironmentAndTheFileSetTheSameSettings() throws {
        let pairs: [(yaml: String, variable: String, value: String)] = [
            ("backup:\n  tenant_concurrency: 3", "TENANT_BACKUP_TENANT_CONCURRENCY", "3"),
            ("api:\n  delete_grace: 2d", "TENANT_BACKUP_API_DELETE_GRACE", "2d"),
            ("signing:\n  public_keys: []", "TENANT_BACKUP_SIGNING_PUBLIC_KEYS", ","),
            ("tenants:\n  include: [a, \"b*\"]", "TENANT_BACKUP_INCLUDE", "a, b*"),
            ("schedule:\n  time_zone: Europe/Madrid\n  cron: \"0 3 * * *\"", "TENANT_BACKUP_SCHEDULE", "0 3 * * *"),
        ]
        for (yaml, variable, value) in pairs {
            var environment: [String: String] = [variable: value]
            if variable == "TENANT_BACKUP_SCHEDULE" { environment["TENANT_BACKUP_TIME_ZONE"] = "Europe/Madrid" }
            let fromFile = try SettingsLoader(environment: [:], defaultConfigPath: "/nonexistent").load(yaml: yaml)
            let fromEnvironment = try SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent").load(yaml: "")
            #expect(fromFile == fromEnvironment, "\(variable)")
            #expect(fromFile != (try SettingsLoader(environment: [:], defaultConfigPath: "/nonexistent").load(yaml: "")) || variable.hasSuffix("PUBLIC_KEYS"), "\(variable)")
        }
    }
}
