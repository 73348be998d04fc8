import Foundation

/// Calendar periods of instants in a time zone, computed with integer arithmetic (no `Calendar` per call),
/// so planning a million backups stays well under a second.
///
/// The zone's UTC offset comes from `TimeZone.secondsFromGMT(for:)`, cached per hour, so daylight-saving
/// changes are honoured.
struct CivilCalendar {
    let timeZone: TimeZone
    private var offsets: [Int64: Int64] = [:]

    init(timeZone: TimeZone) {
        self.timeZone = timeZone
    }

    /// Local date fields of an instant.
    struct Day: Equatable, Hashable {
        /// Days since 1970-01-01 in local time.
        let dayNumber: Int64
        let year: Int64
        let month: Int64
        let day: Int64
    }

    mutating func day(of date: Date) -> Day {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let hour = seconds >= 0 ? seconds / 3600 : (seconds - 3599) / 3600
        let offset: Int64
        if let cached = offsets[hour] {
            offset = cached
        } else {
            offset = Int64(timeZone.secondsFromGMT(for: date))
            offsets[hour] = offset
        }
        let local = seconds + offset
        let dayNumber = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let (year, month, day) = Self.civil(fromDays: dayNumber)
        return Day(dayNumber: dayNumber, year: year, month: month, day: day)
    }

    /// Year, month, day of a day number (days since 1970-01-01), proleptic Gregorian (H. Hinnant's algorithm).
    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Day number of a civil date.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * mp + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// ISO 8601 week: (week-based year, week number 1...53). Weeks start on Monday; week 1 holds the
    /// year's first Thursday.
    static func isoWeek(_ day: Day) -> (Int64, Int64) {
        // 1970-01-01 was a Thursday: Monday = 0.
        let weekday = ((day.dayNumber + 3) % 7 + 7) % 7
        let thursday = day.dayNumber - weekday + 3
        let (year, _, _) = civil(fromDays: thursday)
        let week = (thursday - days(fromCivil: year, 1, 1)) / 7 + 1
        return (year, week)
    }
}
