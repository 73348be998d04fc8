import Foundation
import Logging
import Testing

@testable import TenantBackup

@Suite struct DaemonSettingsTests {
    func load(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> Settings {
        try SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent").load(yaml: yaml, path: "config.yaml")
    }

    @Test func theDefaultsAreADailyRunAtTwoUTCWithMetricsOnLoopback() throws {
        let settings = try load("")
        #expect(settings.daemon.schedule.expression == "0 2 * * *")
        #expect(settings.daemon.schedule.timeZone.secondsFromGMT(for: Date()) == 0)  // UTC (Foundation names it GMT)
        #expect(settings.daemon.catchUp)
        #expect(settings.daemon.stopTimeout == .seconds(60))
        #expect(settings.metrics.listen == ListenAddress(host: "127.0.0.1", port: 9187))
        #expect(settings.metrics.staleAfter == .seconds(26 * 3600))
        #expect(settings.logging == LoggingSettings(format: .automatic, level: .info))
    }

    @Test func everyDaemonSettingIsRead() throws {
        let settings = try load("""
            schedule:
              cron: "30 1 * * mon-sat"
              time_zone: Europe/Madrid
              random_delay: 15m
              catch_up: false
            daemon:
              stop_timeout: 5m
              lock_wait: 2h
              lock_check_interval: 10s
            metrics:
              listen: "[::1]:9999"
              stale_after: 30h
              refresh_interval: 1m
            logging:
              format: journald
              level: debug
            """)
        #expect(settings.daemon.schedule == (try CronSchedule("30 1 * * mon-sat", timeZone: TimeZone(identifier: "Europe/Madrid")!)))
        #expect(settings.daemon.randomDelay == .seconds(900))
        #expect(!settings.daemon.catchUp)
        #expect(settings.daemon.stopTimeout == .seconds(300))
        #expect(settings.daemon.lockWait == .seconds(7200))
        #expect(settings.daemon.lockCheckInterval == .seconds(10))
        #expect(settings.metrics.listen == ListenAddress(host: "::1", port: 9999))
        #expect(settings.metrics.staleAfter == .seconds(30 * 3600))
        #expect(settings.metrics.refreshInterval == .seconds(60))
        #expect(settings.logging == LoggingSettings(format: .journald, level: .debug))
    }

    @Test func metricsCanBeTurnedOff() throws {
        #expect(try load("metrics:\n  listen: off\n").metrics.listen == nil)
        #expect(try load("", environment: ["TENANT_BACKUP_METRICS_LISTEN": "off"]).metrics.listen == nil)
    }

    @Test func theEnvironmentSetsTheScheduleAndItsZone() throws {
        let settings = try load("", environment: ["TENANT_BACKUP_SCHEDULE": "0 4 * * *", "TENANT_BACKUP_TIME_ZONE": "America/Bogota"])
        #expect(settings.daemon.schedule.description == "0 4 * * * (America/Bogota)")
    }

    @Test(arguments: [
        ("schedule:\n  cron: \"0 25 * * *\"\n", "config.yaml:2:9: schedule.cron: hour '25' is not in 0-23"),
        ("schedule:\n  time_zone: Mars/Olympus\n", "config.yaml:2:14: schedule.time_zone: 'Mars/Olympus' is not a time zone"),
        ("schedule:\n  catch_up: maybe\n", "config.yaml:2:13: schedule.catch_up: 'maybe' is not true or false"),
        ("schedule:\n  cron: \"0 0 30 2 *\"\n", "schedule.cron: '0 0 30 2 *' never runs"),
        ("daemon:\n  stop_timeout: soon\n", "config.yaml:2:17: daemon.stop_timeout: 'soon' is not a duration"),
        ("metrics:\n  listen: 9187\n", "config.yaml:2:11: metrics.listen: '9187' is not host:port"),
        ("logging:\n  format: syslog\n", "config.yaml:2:11: logging.format: 'syslog' is not one of auto, journald, logfmt"),
        ("logging:\n  level: loud\n", "config.yaml:2:10: logging.level: 'loud' is not one of"),
        ("daemon:\n  stop_timout: 5s\n", "config.yaml:2:3: unknown key 'stop_timout' in daemon"),
    ])
    func badDaemonSettingsNameTheirPlace(yaml: String, message: String) {
        #expect {
            _ = try load(yaml)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func listenAddressesParse() {
        #expect(ListenAddress("127.0.0.1:9187") == ListenAddress(host: "127.0.0.1", port: 9187))
        #expect(ListenAddress("[::1]:9187")?.description == "[::1]:9187")
        #expect(ListenAddress("localhost:0")?.port == 0)
        #expect(ListenAddress("127.0.0.1") == nil)
        #expect(ListenAddress(":9187") == nil)
        #expect(ListenAddress("host:70000") == nil)
    }
}

@Suite struct JournaldFieldTests {
    @Test func metadataKeysBecomeValidJournaldFieldNames() {
        #expect(JournaldLogHandler.fieldName("tenant") == "TENANT")
        #expect(JournaldLogHandler.fieldName("s3_key") == "S3_KEY")
        #expect(JournaldLogHandler.fieldName("duration_ms") == "DURATION_MS")
        #expect(JournaldLogHandler.fieldName("sl-service") == "SL_SERVICE")
        #expect(JournaldLogHandler.fieldName("_private") == "PRIVATE")  // a leading _ is journald's own
        #expect(JournaldLogHandler.fieldName("3d.view") == "D_VIEW")
        #expect(JournaldLogHandler.fieldName("clínica") == "CL_NICA")
        #expect(JournaldLogHandler.fieldName("__") == nil)
    }

    @Test func levelsMapToSyslogPriorities() {
        #expect(JournaldLogHandler.priority(.critical) == 2)
        #expect(JournaldLogHandler.priority(.error) == 3)
        #expect(JournaldLogHandler.priority(.warning) == 4)
        #expect(JournaldLogHandler.priority(.notice) == 5)
        #expect(JournaldLogHandler.priority(.info) == 6)
        #expect(JournaldLogHandler.priority(.debug) == 7)
    }

    @Test func journaldIsChosenOnlyWhenStderrIsTheJournal() {
        var status = stat()
        fstat(2, &status)
        let ours = "\(status.st_dev):\(status.st_ino)"
        #expect(JournaldLogHandler.standardErrorIsJournal(environment: ["JOURNAL_STREAM": ours]))
        #expect(!JournaldLogHandler.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "1:2"]))
        #expect(!JournaldLogHandler.standardErrorIsJournal(environment: [:]))
        #expect(LoggingSettings(format: .automatic).makeHandler(label: "t", environment: ["JOURNAL_STREAM": ours]) is JournaldLogHandler)
        #expect(LoggingSettings(format: .automatic).makeHandler(label: "t", environment: [:]) is LogfmtLogHandler)
        #expect(LoggingSettings(format: .logfmt).makeHandler(label: "t", environment: ["JOURNAL_STREAM": ours]) is LogfmtLogHandler)
    }
}

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
