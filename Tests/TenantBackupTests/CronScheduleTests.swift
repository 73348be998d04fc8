import Foundation
import Testing

@testable import TenantBackup

@Suite struct CronScheduleTests {
    static let madrid = TimeZone(identifier: "Europe/Madrid")!
    static let utc = TimeZone(identifier: "UTC")!

    static func date(_ text: String, _ zone: TimeZone) -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss ZZZZZ"
        return formatter.date(from: text)!
    }

    static func text(_ date: Date?, _ zone: TimeZone) -> String {
        guard let date else { return "none" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm ZZZZZ"
        return formatter.string(from: date)
    }

    func next(_ expression: String, after: String, _ zone: TimeZone = madrid) throws -> String {
        let schedule = try CronSchedule(expression, timeZone: zone)
        return Self.text(schedule.next(after: Self.date(after, zone)), zone)
    }

    @Test func dailyAtTwoRunsAtTwoLocalTime() throws {
        #expect(try next("0 2 * * *", after: "2026-11-29 01:59:59 +01:00") == "2026-11-29 02:00 +01:00")
        #expect(try next("0 2 * * *", after: "2026-11-29 02:00:00 +01:00") == "2026-11-30 02:00 +01:00")
        #expect(try next("0 2 * * *", after: "2026-07-01 12:00:00 +02:00") == "2026-07-02 02:00 +02:00")
    }

    @Test func aTimeSkippedBySpringForwardRunsAnHourLater() throws {
        // Madrid, 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
        #expect(try next("30 2 * * *", after: "2026-03-28 12:00:00 +01:00") == "2026-03-29 03:30 +02:00")
        #expect(try next("30 2 * * *", after: "2026-03-29 03:30:00 +02:00") == "2026-03-30 02:30 +02:00")
        #expect(try next("0 2 * * *", after: "2026-03-29 00:00:00 +01:00") == "2026-03-29 03:00 +02:00")
    }

    @Test func aTimeRepeatedByFallBackRunsOnceAtTheFirst() throws {
        // Madrid, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        #expect(try next("30 2 * * *", after: "2026-10-25 00:00:00 +02:00") == "2026-10-25 02:30 +02:00")
        #expect(try next("30 2 * * *", after: "2026-10-25 02:30:00 +02:00") == "2026-10-26 02:30 +01:00")
    }

    @Test func hourlyStepsCrossTheDSTChangesWithoutGapsOrDoubles() throws {
        let schedule = try CronSchedule("0 * * * *", timeZone: Self.madrid)
        var date = Self.date("2026-10-24 23:30:00 +02:00", Self.madrid)
        var runs: [Date] = []
        for _ in 0..<6 {
            date = try #require(schedule.next(after: date))
            runs.append(date)
        }
        // Every run is a whole local hour and one real hour apart, except across the repeated 02:00 hour.
        let gaps = zip(runs.dropFirst(), runs).map { $0.timeIntervalSince($1) }
        #expect(gaps == [3600, 3600, 7200, 3600, 3600])
    }

    @Test func fieldsTakeListsRangesStepsAndNames() throws {
        #expect(try next("*/15 9-17 * * mon-fri", after: "2026-11-28 10:00:00 +01:00") == "2026-11-30 09:00 +01:00")  // Saturday → Monday
        #expect(try next("5,35 */6 * * *", after: "2026-11-30 06:06:00 +01:00", Self.madrid) == "2026-11-30 06:35 +01:00")
        #expect(try next("0 0 1 jan,jul *", after: "2026-02-01 00:00:00 +01:00") == "2026-07-01 00:00 +02:00")
        #expect(try next("0 3 * * 7", after: "2026-11-29 04:00:00 +01:00") == "2026-12-06 03:00 +01:00")  // 7 is Sunday
    }

    @Test func bothDayFieldsRestrictedMeansEither() throws {
        // The 1st of the month or any Monday.
        #expect(try next("0 4 1 * mon", after: "2026-11-24 05:00:00 +01:00") == "2026-11-30 04:00 +01:00")
        #expect(try next("0 4 1 * mon", after: "2026-11-30 05:00:00 +01:00") == "2026-12-01 04:00 +01:00")
    }

    @Test func anImpossibleDateNeverRuns() throws {
        #expect(try next("0 0 30 2 *", after: "2026-01-01 00:00:00 +00:00", Self.utc) == "none")
    }

    @Test(arguments: ["0 2 * *", "60 2 * * *", "0 24 * * *", "0 2 0 * *", "0 2 * 13 *", "0 2 * * 8", "*/0 * * * *", "0 5-2 * * *", "0 2 * * funday", "0,,1 2 * * *"])
    func malformedExpressionsAreRejected(expression: String) {
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule(expression) }
    }

    func previous(_ expression: String, atOrBefore: String, _ zone: TimeZone = madrid) throws -> String {
        let schedule = try CronSchedule(expression, timeZone: zone)
        return Self.text(schedule.previous(atOrBefore: Self.date(atOrBefore, zone)), zone)
    }

    @Test func theCurrentSlotIsTheLastRunAtOrBeforeNow() throws {
        #expect(try previous("0 2 * * *", atOrBefore: "2026-11-29 05:33:00 +01:00") == "2026-11-29 02:00 +01:00")
        #expect(try previous("0 2 * * *", atOrBefore: "2026-11-29 02:00:00 +01:00") == "2026-11-29 02:00 +01:00")
        #expect(try previous("0 2 * * *", atOrBefore: "2026-11-29 01:59:59 +01:00") == "2026-11-28 02:00 +01:00")
        #expect(try previous("*/15 9-17 * * mon-fri", atOrBefore: "2026-11-29 10:00:00 +01:00") == "2026-11-27 17:45 +01:00")  // Sunday → Friday
    }

    @Test func theCurrentSlotAcrossDSTChangesInMadrid() throws {
        // Spring forward: 02:30 did not exist on 2026-03-29; that day's run was at 03:30 CEST.
        #expect(try previous("30 2 * * *", atOrBefore: "2026-03-29 04:00:00 +02:00") == "2026-03-29 03:30 +02:00")
        #expect(try previous("30 2 * * *", atOrBefore: "2026-03-29 03:00:00 +02:00") == "2026-03-28 02:30 +01:00")
        // Fall back: 02:30 happened twice on 2026-10-25; the run was the first one.
        #expect(try previous("30 2 * * *", atOrBefore: "2026-10-25 02:45:00 +01:00") == "2026-10-25 02:30 +02:00")
    }

    @Test func onePeriodIsTheTimeBetweenTheNextTwoRuns() throws {
        let daily = try CronSchedule("0 2 * * *", timeZone: Self.madrid)
        #expect(daily.period(after: Self.date("2026-11-29 05:00:00 +01:00", Self.madrid)) == .seconds(86400))
        // The night the clocks go back, a local day lasts 25 hours.
        #expect(daily.period(after: Self.date("2026-10-24 03:00:00 +02:00", Self.madrid)) == .seconds(25 * 3600))
        let weekly = try CronSchedule("0 3 * * sun", timeZone: Self.utc)
        #expect(weekly.period(after: Self.date("2026-11-29 05:00:00 +00:00", Self.utc)) == .seconds(7 * 86400))
    }
}
