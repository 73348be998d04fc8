import Foundation

/// How many backups of a tenant to keep (restic's `forget` semantics, per tenant). The defaults keep the
/// old system's promise: the newest, daily for a week, weekly for a month, monthly for a year.
public struct RetentionPolicy: Sendable, Equatable {
    public var keepLast: Int
    public var keepDaily: Int
    public var keepWeekly: Int
    public var keepMonthly: Int
    public var keepYearly: Int
    /// Keep every backup newer than (the newest backup − this), whatever the other rules say.
    public var keepWithin: Duration?
    /// The zone whose days, ISO weeks, months and years the periods are.
    public var timeZone: TimeZone

    public init(
        keepLast: Int = 1, keepDaily: Int = 7, keepWeekly: Int = 4, keepMonthly: Int = 12, keepYearly: Int = 0,
        keepWithin: Duration? = nil, timeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) {
        self.keepLast = keepLast
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
        self.keepWithin = keepWithin
        self.timeZone = timeZone
    }
}

/// One backup as the planner sees it: every object that matches the naming pattern, manifest or not.
public struct RetentionCandidate: Sendable, Equatable, Hashable {
    public let key: String
    /// From the key: when the dump started.
    public let timestamp: Date
    public let size: Int64
    /// Whether a manifest was found and the object matches it.
    public let verified: Bool
    /// Whether a manifest is beside it (the listing shows one): within a period, preferred over one without.
    public var vouched: Bool
    /// Whether a trusted mark says `adopt` or `verify` proved it broken or foreign: never kept in place of
    /// another backup of its period.
    public var marked: Bool

    public init(key: String, timestamp: Date, size: Int64 = 0, verified: Bool = false, vouched: Bool = false, marked: Bool = false) {
        self.key = key
        self.timestamp = timestamp
        self.size = size
        self.verified = verified
        self.vouched = vouched
        self.marked = marked
    }

    /// Which backup of a period a rule keeps: the best rank, then the newest. With every rank equal this is
    /// restic's rule (the newest of each period).
    var rank: Int { marked ? 0 : vouched ? 2 : 1 }

    /// The planner's order: newest first, ties broken by key so the plan never depends on input order.
    public static func newestFirst(_ left: RetentionCandidate, _ right: RetentionCandidate) -> Bool {
        left.timestamp != right.timestamp ? left.timestamp > right.timestamp : left.key > right.key
    }
}

/// Why a backup is kept.
public enum RetentionReason: String, Sendable, Equatable, Hashable, CaseIterable {
    case last, daily, weekly, monthly, yearly, within
    /// The newest backup: never deleted.
    case newest
    /// The newest backup with a verified manifest: never deleted.
    case newestVerified = "newest-verified"
    /// Dated beyond now (plus the clock-skew allowance): left out of planning and kept.
    case future = "future-dated"
    /// A shared-schema dump that a kept tenant backup's manifest names: restoring that backup needs it.
    case named
    /// A shared-schema dump younger than the grace period: a cycle in flight (here or on another host) may
    /// still name it.
    case recent
}

/// The planner's verdict on one backup.
public struct RetentionDecision: Sendable, Equatable {
    public let candidate: RetentionCandidate
    /// Empty means delete.
    public let reasons: [RetentionReason]
    public var keep: Bool { !reasons.isEmpty }
}

/// What to keep and what to delete, newest first, with reasons.
public struct RetentionPlan: Sendable, Equatable {
    public let decisions: [RetentionDecision]
    public var kept: [RetentionDecision] { decisions.filter(\.keep) }
    public var deleted: [RetentionDecision] { decisions.filter { !$0.keep } }
}

/// The pure grandfather-father-son planner: same input, same plan, whatever the input's order.
public enum RetentionPlanner {
    /// How far in the future a backup may be dated and still be planned (clocks disagree a little).
    public static let defaultClockSkewAllowance: TimeInterval = 3600

    /// The brakes, in `planned` (not dated in the future, newest first): the newest backup, and the newest
    /// verified one that no mark condemns. Retention never deletes them; a delete of one is refused unless
    /// forced. The one home of the rule.
    static func brakes(_ planned: [RetentionCandidate]) -> (newest: Int?, newestVerified: Int?) {
        (planned.indices.first, planned.firstIndex { $0.verified && !$0.marked })
    }

    /// Which brake protects `key` among a tenant's `candidates` now: `.newest`, `.newestVerified`, or `nil`.
    public static func brake(
        on key: String, among candidates: [RetentionCandidate], now: Date, clockSkewAllowance: TimeInterval = defaultClockSkewAllowance
    ) -> RetentionReason? {
        let horizon = now.addingTimeInterval(clockSkewAllowance)
        let planned = candidates.filter { $0.timestamp <= horizon }.sorted(by: RetentionCandidate.newestFirst)
        let (newest, newestVerified) = brakes(planned)
        if let newest, planned[newest].key == key { return .newest }
        if let newestVerified, planned[newestVerified].key == key { return .newestVerified }
        return nil
    }

    public static func plan(
        _ candidates: [RetentionCandidate], policy: RetentionPolicy, now: Date,
        clockSkewAllowance: TimeInterval = defaultClockSkewAllowance
    ) -> RetentionPlan {
        let horizon = now.addingTimeInterval(clockSkewAllowance)
        var future: [RetentionCandidate] = []
        var planned: [RetentionCandidate] = []
        planned.reserveCapacity(candidates.count)
        for candidate in candidates {
            if candidate.timestamp > horizon { future.append(candidate) } else { planned.append(candidate) }
        }
        planned.sort(by: RetentionCandidate.newestFirst)
        future.sort(by: RetentionCandidate.newestFirst)

        var reasons = [[RetentionReason]](repeating: [], count: planned.count)
        if !planned.isEmpty {
            var calendar = CivilCalendar(timeZone: policy.timeZone)
            var daily = [Int64](), weekly = [Int64](), monthly = [Int64](), yearly = [Int64]()
            daily.reserveCapacity(planned.count)
            weekly.reserveCapacity(planned.count)
            monthly.reserveCapacity(planned.count)
            yearly.reserveCapacity(planned.count)
            for candidate in planned {
                let day = calendar.day(of: candidate.timestamp)
                let (weekYear, week) = CivilCalendar.isoWeek(day)
                daily.append(day.dayNumber)
                weekly.append(weekYear * 100 + week)
                monthly.append(day.year * 12 + day.month)
                yearly.append(day.year)
            }
            let last = Array(0..<Int64(planned.count))
            let rules: [(RetentionReason, Int, [Int64])] = [
                (.last, policy.keepLast, last), (.daily, policy.keepDaily, daily), (.weekly, policy.keepWeekly, weekly),
                (.monthly, policy.keepMonthly, monthly), (.yearly, policy.keepYearly, yearly),
            ]
            for (reason, count, periods) in rules where count > 0 {
                var left = count
                var keptOldest = false
                var start = 0
                while start < periods.count, left > 0 {
                    // One period: the contiguous run of backups (newest first) with the same period.
                    var end = start + 1
                    while end < periods.count, periods[end] == periods[start] { end += 1 }
                    var best = start
                    for index in start..<end where planned[index].rank > planned[best].rank { best = index }
                    reasons[best].append(reason)
                    left -= 1
                    keptOldest = best == periods.count - 1
                    start = end
                }
                // A rule with count left when it reaches the oldest backup keeps the oldest too.
                if left > 0, !keptOldest {
                    reasons[periods.count - 1].append(reason)
                }
            }
            if let within = policy.keepWithin {
                let (seconds, attoseconds) = within.components
                let threshold = planned[0].timestamp.addingTimeInterval(-(Double(seconds) + Double(attoseconds) / 1e18))
                for index in planned.indices where planned[index].timestamp > threshold {
                    reasons[index].append(.within)
                }
            }
            let (newest, newestVerified) = brakes(planned)
            if let newest { reasons[newest].append(.newest) }
            if let newestVerified { reasons[newestVerified].append(.newestVerified) }
        }
        let decisions = future.map { RetentionDecision(candidate: $0, reasons: [.future]) }
            + zip(planned, reasons).map { RetentionDecision(candidate: $0, reasons: $1) }
        return RetentionPlan(decisions: decisions)
    }
}
