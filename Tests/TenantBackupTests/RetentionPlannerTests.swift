import Foundation
import Testing

@testable import TenantBackup

/// A generator with a seed, so a failing property prints a history that can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct RetentionPlannerTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let madrid = TimeZone(identifier: "Europe/Madrid")!

    static func date(_ text: String, _ zone: TimeZone = utc) -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.date(from: text)!
    }

    static func candidates(_ dates: [Date]) -> [RetentionCandidate] {
        dates.map { RetentionCandidate(key: "backups/t/backup-sql-t-\(BackupKey.format($0)).sql.zst", timestamp: $0) }
    }

    /// The brake an operator's delete asks about is the one the plan applies: for every backup of random sets
    /// (some verified, some marked, some dated in the future), `brake(on:)` names `.newest` or `.newestVerified`
    /// exactly where the plan gives that reason.
    @Test func aDeleteAsksThePlannerForTheSameBrakesThePlanApplies() {
        var generator = SeededGenerator(state: 20_261_207)
        let now = Self.date("2026-12-07 03:00")
        for _ in 0..<200 {
            let candidates = (0..<Int.random(in: 1...12, using: &generator)).map { index in
                let time = now.addingTimeInterval(Double(Int.random(in: -90...2, using: &generator)) * 3600 * 12)
                var candidate = RetentionCandidate(
                    key: "backups/t/\(index)", timestamp: time, verified: Bool.random(using: &generator), vouched: Bool.random(using: &generator))
                candidate.marked = Int.random(in: 0..<5, using: &generator) == 0
                return candidate
            }
            let plan = RetentionPlanner.plan(candidates, policy: RetentionPolicy(), now: now)
            for decision in plan.decisions {
                let planned = decision.reasons.contains(.newest) ? RetentionReason.newest : decision.reasons.contains(.newestVerified) ? .newestVerified : nil
                #expect(RetentionPlanner.brake(on: decision.candidate.key, among: candidates, now: now) == planned, "\(candidates)")
            }
        }
    }

    static func keptDays(_ plan: RetentionPlan, _ zone: TimeZone = utc) -> [String] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd"
        return plan.kept.map { formatter.string(from: $0.candidate.timestamp) }
    }

    // MARK: - Table tests, checked by hand

    /// 400 daily backups, 2025-10-26 … 2026-11-29 (a Sunday), default policy (last 1, daily 7, weekly 4,
    /// monthly 12). daily keeps Nov 23–29 (7); weekly keeps the newest of ISO weeks 48, 47, 46, 45: Nov 29
    /// (already kept), 22, 15, 8 (+3); monthly keeps the newest of Nov 2026 … Dec 2025: Nov 29 (already
    /// kept) and Oct 31, Sep 30, Aug 31, Jul 31, Jun 30, May 31, Apr 30, Mar 31, Feb 28, Jan 31, Dec 31 (+11);
    /// last keeps Nov 29 (already kept). 1 + 7 + 4 + 12 = 24 rule slots, minus the 3 that land on Nov 29
    /// twice = 21 kept, 379 deleted.
    @Test func fourHundredDailyBackupsWithTheDefaultPolicyKeepTwentyOne() {
        let newest = Self.date("2026-11-29 02:00")
        let dates = (0..<400).map { newest.addingTimeInterval(-Double($0) * 86400) }
        let plan = RetentionPlanner.plan(Self.candidates(dates), policy: RetentionPolicy(), now: newest.addingTimeInterval(3600))
        #expect(plan.kept.count == 21)
        #expect(plan.deleted.count == 379)
        #expect(Self.keptDays(plan) == [
            "2026-11-29", "2026-11-28", "2026-11-27", "2026-11-26", "2026-11-25", "2026-11-24", "2026-11-23",
            "2026-11-22", "2026-11-15", "2026-11-08",
            "2026-10-31", "2026-09-30", "2026-08-31", "2026-07-31", "2026-06-30", "2026-05-31", "2026-04-30",
            "2026-03-31", "2026-02-28", "2026-01-31", "2025-12-31",
        ])
        #expect(plan.kept.first?.reasons == [.last, .daily, .weekly, .monthly, .newest])
        #expect(plan.kept.first { Self.keptDays(RetentionPlan(decisions: [$0])) == ["2026-11-22"] }?.reasons == [.weekly])
    }

    @Test func aHistoryShorterThanThePolicyKeepsTheOldest() {
        let newest = Self.date("2026-11-29 02:00")
        let dates = (0..<3).map { newest.addingTimeInterval(-Double($0) * 86400) }
        let plan = RetentionPlanner.plan(Self.candidates(dates), policy: RetentionPolicy(), now: newest)
        #expect(plan.deleted.isEmpty)
        #expect(plan.decisions.last?.reasons.contains(.monthly) == true)  // monthly had count left: keeps the oldest
    }

    @Test func twoBackupsInOneDayKeepOnlyTheNewerForTheDailyRule() {
        let dates = [Self.date("2026-11-28 02:00"), Self.date("2026-11-28 14:00"), Self.date("2026-11-27 02:00")]
        let plan = RetentionPlanner.plan(Self.candidates(dates), policy: RetentionPolicy(keepLast: 0, keepDaily: 2, keepWeekly: 0, keepMonthly: 0), now: Self.date("2026-11-29 00:00"))
        #expect(Self.keptDays(plan) == ["2026-11-28", "2026-11-27"])
        #expect(plan.kept.first?.candidate.timestamp == Self.date("2026-11-28 14:00"))
        #expect(plan.deleted.map(\.candidate.timestamp) == [Self.date("2026-11-28 02:00")])
    }

    @Test func isoWeekFiftyThreeIsOneWeek() {
        // 2026-12-28 (Mon) … 2027-01-03 (Sun) is ISO week 53 of 2026; 2027-01-04 starts week 1 of 2027.
        let dates = ["2027-01-04 02:00", "2027-01-03 02:00", "2026-12-31 02:00", "2026-12-28 02:00", "2026-12-27 02:00"].map { Self.date($0) }
        let plan = RetentionPlanner.plan(
            Self.candidates(dates), policy: RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 3, keepMonthly: 0), now: Self.date("2027-01-05 00:00"))
        #expect(Self.keptDays(plan) == ["2027-01-04", "2027-01-03", "2026-12-27"])
    }

    @Test func monthBoundariesFollowTheConfiguredZone() {
        // 2026-10-31 23:30 UTC is already November 1st in Madrid (UTC+1 in winter).
        let dates = [Self.date("2026-11-02 01:00"), Self.date("2026-10-31 23:30"), Self.date("2026-10-31 21:00")]
        let policy = RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 2, timeZone: Self.madrid)
        let madrid = RetentionPlanner.plan(Self.candidates(dates), policy: policy, now: Self.date("2026-11-03 00:00"))
        #expect(madrid.kept.map(\.candidate.timestamp) == [Self.date("2026-11-02 01:00"), Self.date("2026-10-31 21:00")])
        var utcPolicy = policy
        utcPolicy.timeZone = Self.utc
        let utc = RetentionPlanner.plan(Self.candidates(dates), policy: utcPolicy, now: Self.date("2026-11-03 00:00"))
        #expect(utc.kept.map(\.candidate.timestamp) == [Self.date("2026-11-02 01:00"), Self.date("2026-10-31 23:30")])
    }

    @Test func theNewestSurvivesAPolicyOfAllZeros() {
        let dates = (0..<10).map { Self.date("2026-11-29 02:00").addingTimeInterval(-Double($0) * 86400) }
        let plan = RetentionPlanner.plan(
            Self.candidates(dates), policy: RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0),
            now: Self.date("2026-11-29 03:00"))
        #expect(plan.kept.map(\.reasons) == [[.newest]])
    }

    @Test func theNewestVerifiedBackupIsKept() {
        let dates = (0..<10).map { Self.date("2026-11-29 02:00").addingTimeInterval(-Double($0) * 86400) }
        var candidates = Self.candidates(dates)
        candidates[6] = RetentionCandidate(key: candidates[6].key, timestamp: candidates[6].timestamp, verified: true)
        let plan = RetentionPlanner.plan(candidates, policy: RetentionPolicy(keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0), now: Self.date("2026-11-29 03:00"))
        #expect(plan.kept.map(\.candidate.key) == [candidates[0].key, candidates[6].key])
        #expect(plan.kept.last?.reasons == [.newestVerified])
    }

    @Test func aBackupDatedNextYearIsKeptAndDoesNotTakeTheNewestsProtection() {
        let now = Self.date("2026-11-29 03:00")
        let dates = [Self.date("2027-11-29 02:00")] + (0..<5).map { Self.date("2026-11-29 02:00").addingTimeInterval(-Double($0) * 86400) }
        let plan = RetentionPlanner.plan(
            Self.candidates(dates), policy: RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0), now: now)
        #expect(plan.kept.map(\.reasons) == [[.future], [.newest]])
        #expect(plan.kept.last?.candidate.timestamp == Self.date("2026-11-29 02:00"))
    }

    @Test func keepWithinCountsFromTheNewestBackupNotFromNow() {
        let dates = (0..<10).map { Self.date("2026-01-10 02:00").addingTimeInterval(-Double($0) * 86400) }
        let plan = RetentionPlanner.plan(
            Self.candidates(dates), policy: RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepWithin: .seconds(3 * 86400)),
            now: Self.date("2026-11-29 03:00"))
        #expect(Self.keptDays(plan) == ["2026-01-10", "2026-01-09", "2026-01-08"])
    }

    // MARK: - Properties over random histories

    static func randomHistory(_ generator: inout SeededGenerator) -> [RetentionCandidate] {
        var dates: [Date] = []
        var time = date("2027-06-01 00:00").timeIntervalSince1970
        let count = Int.random(in: 1...300, using: &generator)
        for _ in 0..<count {
            // Several a day, daily, or gaps of weeks; around DST changes too.
            let step: Double = [3600, 5 * 3600, 86400, 86400, 86400, 7 * 86400, 23 * 86400].randomElement(using: &generator)!
            time -= step + Double(Int.random(in: 0...3600, using: &generator))
            dates.append(Date(timeIntervalSince1970: time))
        }
        return dates.enumerated().map { RetentionCandidate(key: "k\($0.offset)", timestamp: $0.element, verified: Bool.random(using: &generator)) }
    }

    static func randomPolicy(_ generator: inout SeededGenerator) -> RetentionPolicy {
        RetentionPolicy(
            keepLast: Int.random(in: 0...3, using: &generator), keepDaily: Int.random(in: 0...10, using: &generator),
            keepWeekly: Int.random(in: 0...6, using: &generator), keepMonthly: Int.random(in: 0...14, using: &generator),
            keepYearly: Int.random(in: 0...3, using: &generator), timeZone: Bool.random(using: &generator) ? madrid : utc)
    }

    @Test(arguments: 0..<40)
    func propertiesHoldForRandomHistories(seed: UInt64) {
        var generator = SeededGenerator(state: seed)
        let history = Self.randomHistory(&generator)
        let policy = Self.randomPolicy(&generator)
        let now = Self.date("2027-06-01 00:00")
        let plan = RetentionPlanner.plan(history, policy: policy, now: now)

        // The newest backup is always kept.
        let newest = history.max { $0.timestamp < $1.timestamp }!
        #expect(plan.decisions.first { $0.candidate == newest }?.keep == true)

        // Each rule keeps at most its count, and the newest backup of each of its first `count` periods.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = policy.timeZone
        var iso = Calendar(identifier: .iso8601)
        iso.timeZone = policy.timeZone
        let sorted = history.sorted { $0.timestamp > $1.timestamp }
        let rules: [(RetentionReason, Int, (Date) -> [Int])] = [
            (.daily, policy.keepDaily, { let c = calendar.dateComponents([.year, .month, .day], from: $0); return [c.year!, c.month!, c.day!] }),
            (.weekly, policy.keepWeekly, { let c = iso.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0); return [c.yearForWeekOfYear!, c.weekOfYear!] }),
            (.monthly, policy.keepMonthly, { let c = calendar.dateComponents([.year, .month], from: $0); return [c.year!, c.month!] }),
            (.yearly, policy.keepYearly, { [calendar.component(.year, from: $0)] }),
        ]
        for (reason, count, period) in rules {
            let keptByRule = plan.decisions.filter { $0.reasons.contains(reason) }
            #expect(keptByRule.count <= count, "\(reason) seed \(seed)")
            var firstOfPeriod: [[Int]: RetentionCandidate] = [:]
            var order: [[Int]] = []
            for candidate in sorted {
                let key = period(candidate.timestamp)
                if firstOfPeriod[key] == nil {
                    firstOfPeriod[key] = candidate
                    order.append(key)
                }
            }
            for key in order.prefix(count) {
                let candidate = firstOfPeriod[key]!
                #expect(plan.decisions.first { $0.candidate == candidate }?.reasons.contains(reason) == true, "\(reason) \(key) seed \(seed)")
            }
        }

        // Adding to a rule never deletes more.
        var wider = policy
        wider.keepDaily += 1
        wider.keepMonthly += 1
        let widerDeleted = Set(RetentionPlanner.plan(history, policy: wider, now: now).deleted.map(\.candidate))
        #expect(widerDeleted.isSubset(of: Set(plan.deleted.map(\.candidate))), "seed \(seed)")

        // The input's order does not matter.
        var shuffled = history
        shuffled.shuffle(using: &generator)
        #expect(RetentionPlanner.plan(shuffled, policy: policy, now: now) == plan, "seed \(seed)")
    }

    @Test func theCivilCalendarAgreesWithFoundationAcrossDSTChanges() {
        var generator = SeededGenerator(state: 42)
        var civil = CivilCalendar(timeZone: Self.madrid)
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = Self.madrid
        for _ in 0..<5000 {
            let date = Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800, using: &generator)))
            let day = civil.day(of: date)
            let components = calendar.dateComponents([.year, .month, .day, .yearForWeekOfYear, .weekOfYear], from: date)
            #expect([day.year, day.month, day.day] == [components.year!, components.month!, components.day!].map(Int64.init))
            let (weekYear, week) = CivilCalendar.isoWeek(day)
            #expect([weekYear, week] == [components.yearForWeekOfYear!, components.weekOfYear!].map(Int64.init))
        }
    }
}
