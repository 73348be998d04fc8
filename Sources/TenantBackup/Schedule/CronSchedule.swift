import Foundation

/// A five-field cron expression (`minute hour day-of-month month day-of-week`) in a time zone, e.g.
/// `0 2 * * *` in Europe/Madrid: a pure value whose ``next(after:)`` is unit-tested across DST changes.
///
/// Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, and names (`jan`…`dec`,
/// `sun`…`sat`; 0 and 7 are both Sunday). As in classic cron, when both day fields are restricted a day
/// matching either runs. Local times the clocks skip (spring forward) run when the skipped hour would have
/// ended, i.e. one hour later; local times that happen twice (fall back) run once, at the first.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    public let expression: String
    public let timeZone: TimeZone
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    /// 0 = Sunday … 6 = Saturday.
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { "\(expression) (\(timeZone.identifier))" }

    /// A cron expression that cannot be parsed, with the field at fault.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let expression: String
        public let message: String
        public var description: String { "schedule '\(expression)': \(message)" }
    }

    public init(_ expression: String, timeZone: TimeZone = TimeZone(identifier: "UTC")!) throws(ParseError) {
        self.expression = expression
        self.timeZone = timeZone
        let fields = expression.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(expression: expression, message: "expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        minutes = try Self.field(fields[0], name: "minute", range: 0...59, names: [:], expression: expression)
        hours = try Self.field(fields[1], name: "hour", range: 0...23, names: [:], expression: expression)
        daysOfMonth = try Self.field(fields[2], name: "day of month", range: 1...31, names: [:], expression: expression)
        months = try Self.field(
            fields[3], name: "month", range: 1...12,
            names: Dictionary(uniqueKeysWithValues: monthNames.enumerated().map { ($1, $0 + 1) }), expression: expression)
        let weekdays = try Self.field(
            fields[4], name: "day of week", range: 0...7,
            names: Dictionary(uniqueKeysWithValues: dayNames.enumerated().map { ($1, $0) }), expression: expression)
        daysOfWeek = Set(weekdays.map { $0 == 7 ? 0 : $0 })
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
    }

    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String: Int], expression: String) throws(ParseError) -> Set<Int> {
        func value(_ token: Substring) throws(ParseError) -> Int {
            if let number = Int(token), range.contains(number) { return number }
            if let named = names[token.lowercased()] { return named }
            throw ParseError(expression: expression, message: "\(name) '\(token)' is not in \(range.lowerBound)-\(range.upperBound)")
        }
        var result = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw ParseError(expression: expression, message: "empty item in the \(name) field") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw ParseError(expression: expression, message: "\(name) '\(part)' has more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else {
                    throw ParseError(expression: expression, message: "\(name) step '\(pieces[1])' must be a positive number")
                }
                step = parsed
            }
            let base = pieces[0]
            var low: Int
            var high: Int
            if base == "*" {
                low = range.lowerBound
                high = range.upperBound
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else { throw ParseError(expression: expression, message: "\(name) range '\(base)' is reversed") }
            } else {
                low = try value(base)
                high = pieces.count == 2 ? range.upperBound : low
            }
            result.formUnion(stride(from: low, through: high, by: step))
        }
        return result
    }

    /// Whether the schedule runs on a local date.
    func runs(year: Int64, month: Int64, day: Int64, weekday: Int) -> Bool {
        guard months.contains(Int(month)) else { return false }
        let domMatch = daysOfMonth.contains(Int(day))
        let dowMatch = daysOfWeek.contains(weekday)
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): return domMatch || dowMatch
        case (true, false): return domMatch
        case (false, true): return dowMatch
        case (false, false): return true
        }
    }

    /// The first run strictly after `date`, or `nil` when none comes within five years (e.g. `0 0 30 2 *`).
    public func next(after date: Date) -> Date? {
        let start = Int64(date.timeIntervalSince1970.rounded(.down))
        let firstDay = dayNumber(of: start) - 1
        for day in firstDay...(firstDay + 5 * 366) {
            if let instant = instants(onDay: day).first(where: { $0 > start }) {
                return Date(timeIntervalSince1970: TimeInterval(instant))
            }
        }
        return nil
    }

    /// The last run at or before `date` (the slot a cycle started now belongs to), or `nil` when none came
    /// within five years.
    public func previous(atOrBefore date: Date) -> Date? {
        let end = Int64(date.timeIntervalSince1970.rounded(.down))
        let lastDay = dayNumber(of: end) + 1
        for day in stride(from: lastDay, through: lastDay - 5 * 366, by: -1) {
            if let instant = instants(onDay: day).last(where: { $0 <= end }) {
                return Date(timeIntervalSince1970: TimeInterval(instant))
            }
        }
        return nil
    }

    /// The local day (days since 1970-01-01 in this zone) that contains the UTC second `seconds`.
    private func dayNumber(of seconds: Int64) -> Int64 {
        var civil = CivilCalendar(timeZone: timeZone)
        return civil.day(of: Date(timeIntervalSince1970: TimeInterval(seconds))).dayNumber
    }

    /// The UTC seconds of this schedule's runs on one local day, in the day's wall-clock order.
    func instants(onDay dayNumber: Int64) -> [Int64] {
        let (year, month, day) = CivilCalendar.civil(fromDays: dayNumber)
        let weekday = Int(((dayNumber + 4) % 7 + 7) % 7)  // 1970-01-01 was a Thursday (4)
        guard runs(year: year, month: month, day: day, weekday: weekday) else { return [] }
        var result: [Int64] = []
        for hour in hours.sorted() {
            for minute in minutes.sorted() {
                if let instant = instant(forLocal: dayNumber * 86400 + Int64(hour) * 3600 + Int64(minute) * 60) {
                    result.append(instant)
                }
            }
        }
        return result
    }

    /// The time between the next two runs after `date`: one schedule period, as catch-up measures it.
    public func period(after date: Date) -> Duration? {
        guard let first = next(after: date), let second = next(after: first) else { return nil }
        return .seconds(Int64(second.timeIntervalSince(first)))
    }

    /// The first UTC second whose local wall-clock time is `wall` (seconds since 1970 in local time); for a
    /// wall time the clocks skip, the instant it maps to once the clocks have moved on.
    func instant(forLocal wall: Int64) -> Int64? {
        // Offsets in force a day around: a wall time maps back through one of them.
        var offsets = Set<Int64>()
        for probe in stride(from: wall - 86400, through: wall + 86400, by: 3 * 3600) {
            offsets.insert(Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(probe)))))
        }
        let exact = offsets.map { wall - $0 }.filter { candidate in
            Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(candidate)))) + candidate == wall
        }
        if let first = exact.min() { return first }
        // Skipped by a spring-forward: interpret with the offset before the change (02:30 → 03:30).
        let before = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(wall - 86400))))
        return wall - before
    }
}
