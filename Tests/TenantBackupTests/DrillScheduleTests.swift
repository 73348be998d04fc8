import Foundation
import Testing

@testable import TenantBackup

/// Which tenants a drill run takes: never-drilled first, then those drilled longest ago, `count` of them.
@Suite struct DrillScheduleTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)

    @Test func neverDrilledTenantsComeFirstThenTheLongestAgo() {
        let last = ["a": Self.now.addingTimeInterval(-3600), "b": Self.now.addingTimeInterval(-86400), "c": Self.now]
        #expect(DrillService.due(["a", "b", "c", "d", "e"], lastDrilled: last, count: 3) == ["d", "e", "b"])
        #expect(DrillService.due(["a", "b", "c"], lastDrilled: last, count: 1) == ["b"])
        #expect(DrillService.due(["a", "b", "c"], lastDrilled: last, count: 10) == ["b", "a", "c"])
        #expect(DrillService.due([], lastDrilled: last, count: 2).isEmpty)
        // A tenant gone from the database is not drilled, whatever its history.
        #expect(DrillService.due(["c"], lastDrilled: last, count: 2) == ["c"])
    }

    @Test func drillSettingsAreReadAndAbsurdOnesRefused() throws {
        let environment = ["TENANT_BACKUP_DRILL_CRON": "30 4 * * 0", "TENANT_BACKUP_AUDIT_RETENTION_DAYS": "30"]
        let settings = try SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent").load()
        #expect(settings.drill.schedule?.expression == "30 4 * * 0")
        #expect(settings.audit.retentionDays == 30)
        for (name, value) in [("TENANT_BACKUP_DRILL_CRON", "61 * * * *"), ("TENANT_BACKUP_AUDIT_RETENTION_DAYS", "0"),
                              ("TENANT_BACKUP_AUDIT_RETENTION_DAYS", "99999999999999999999"), ("TENANT_BACKUP_AUDIT_RETENTION_DAYS", "1.5")] {
            #expect(throws: ConfigError.self, "\(name)=\(value)") {
                try SettingsLoader(environment: [name: value], defaultConfigPath: "/nonexistent").load()
            }
        }
        let yaml = FileManager.default.temporaryDirectory.appendingPathComponent("drill-\(UUID().uuidString.prefix(8)).yaml").path
        defer { try? FileManager.default.removeItem(atPath: yaml) }
        try "drill:\n  cron: \"0 5 * * *\"\n  tenants_per_run: 3\naudit:\n  retention_days: 365\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        let fromFile = try SettingsLoader(environment: [:], defaultConfigPath: "/nonexistent").load(configFile: yaml)
        #expect(fromFile.drill.tenantsPerRun == 3 && fromFile.drill.schedule?.expression == "0 5 * * *" && fromFile.audit.retentionDays == 365)
        try "drill:\n  tenants_per_run: 0\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        #expect {
            try SettingsLoader(environment: [:], defaultConfigPath: "/nonexistent").load(configFile: yaml)
        } throws: { error in
            "\(error)".contains("drill.tenants_per_run") || "\(error)".contains("tenants_per_run")
        }
    }
}
