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
}
