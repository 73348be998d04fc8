import Foundation

/// The key of one backup object, compatible with the system tenant-backup replaces:
///
/// `<prefix>backups/<tenant>/backup-sql-<tenant>-YYYY-MM-DD-HHMMSS<suffix>` (``BackupFormat``) for a clinic, and
/// `<prefix>shared/<schema>/backup-sql-<schema>-...` for a shared schema. The timestamp is UTC, taken when the
/// dump starts. The schema name is percent-encoded for every byte outside `[A-Za-z0-9_-]`, so `.`, `/`, `..`,
/// spaces and quotes can never change the path, and the mapping is reversible.
public struct BackupKey: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Area: String, Sendable {
        /// `backups/`: one clinic's backups.
        case tenant = "backups"
        /// `shared/`: schemas every clinic shares; no tenant name can reach them.
        case shared
    }

    public let prefix: String
    public let area: Area
    public let schema: String
    /// When the dump started (UTC, whole seconds).
    public let timestamp: Date
    /// What the object is, as its name says after the timestamp (``BackupFormat/suffix``).
    public let format: BackupFormat

    /// Everything after the timestamp: exactly one of ``BackupFormat/suffixes``.
    public var suffix: String { format.suffix }

    /// The compression the key's name says.
    public var compression: Compression { format.compression }

    /// What follows a backup's key to name its mark (``BackupMark``): proved broken or foreign.
    public static let markSuffix = ".rejected.json"

    /// `<key>.rejected.json`.
    public var markKey: String { key + Self.markSuffix }

    /// What follows a backup's key to name its soft delete (``DeletionMark``): deleted through the API, purged
    /// after the grace.
    public static let deletionSuffix = ".deleted.json"

    /// `<key>.deleted.json`.
    public var deletionKey: String { key + Self.deletionSuffix }

    /// What follows a backup's key to name its manifest.
    public static let manifestSuffix = ".manifest.json"

    /// Every suffix a backup key may end in (``BackupFormat/suffixes``).
    public static var suffixes: Set<String> { BackupFormat.suffixes }

    public init(prefix: String, area: Area, schema: String, timestamp: Date, format: BackupFormat) {
        self.prefix = prefix
        self.area = area
        self.schema = schema
        self.timestamp = Date(timeIntervalSince1970: timestamp.timeIntervalSince1970.rounded(.down))
        self.format = format
    }

    /// A key with the format `suffix` names; `suffix` must be one of ``suffixes``.
    public init(prefix: String, area: Area, schema: String, timestamp: Date, suffix: String) {
        guard let format = BackupFormat(suffix: suffix) else { preconditionFailure("\(suffix) is not the suffix of a backup format") }
        self.init(prefix: prefix, area: area, schema: schema, timestamp: timestamp, format: format)
    }

    /// The file name the object has once its stages are undone (the dump as pg_dump wrote it).
    public var decodedFileName: String {
        BackupKey(prefix: prefix, area: area, schema: schema, timestamp: timestamp, format: format.decoded).fileName
    }

    /// `schema` with every byte outside `[A-Za-z0-9_-]` percent-encoded (upper-case hex).
    public static func encode(_ schema: String) -> String {
        var result = ""
        for byte in schema.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    /// The schema name back from its encoded form, or `nil` when the text is not an encoding we produce.
    public static func decode(_ encoded: String) -> String? {
        guard encoded.utf8.allSatisfy({ byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "%")
        }) else { return nil }
        guard let decoded = encoded.removingPercentEncoding, encode(decoded) == encoded else { return nil }
        return decoded
    }

    /// The folder of one schema's backups, with its trailing slash: `backups/clinic/` never matches
    /// `backups/clinic2/`.
    public static func folder(prefix: String, area: Area, schema: String) -> String {
        "\(prefix)\(area.rawValue)/\(encode(schema))/"
    }

    public var folder: String { Self.folder(prefix: prefix, area: area, schema: schema) }

    /// `backup-sql-<schema>-YYYY-MM-DD-HHMMSS<suffix>`.
    public var fileName: String { "backup-sql-\(Self.encode(schema))-\(Self.format(timestamp))\(suffix)" }

    /// The object key.
    public var key: String { folder + fileName }

    /// The key of the manifest written beside the object.
    public var manifestKey: String { key + Self.manifestSuffix }

    /// The backup a manifest key belongs to, or `nil` when `key` is not the manifest of exactly one backup
    /// key of ours.
    public static func parseManifest(_ key: String, prefix: String) -> BackupKey? {
        guard key.hasSuffix(manifestSuffix) else { return nil }
        return parse(String(key.dropLast(manifestSuffix.count)), prefix: prefix)
    }

    public var description: String { key }

    /// Parses a backup key of ours, or returns `nil` for anything else (which retention must never touch):
    /// the folder, the file name's schema and the timestamp must all match, and the suffix must be exactly
    /// one of ``suffixes``.
    public static func parse(_ key: String, prefix: String) -> BackupKey? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, let area = Area(rawValue: String(parts[0])), let schema = decode(String(parts[1])) else { return nil }
        let encoded = String(parts[1])
        let file = parts[2]
        let head = "backup-sql-\(encoded)-"
        guard file.hasPrefix(head) else { return nil }
        let rest = file.dropFirst(head.count)
        guard rest.count >= 17, let timestamp = parseTimestamp(String(rest.prefix(17))) else { return nil }
        guard let format = BackupFormat(suffix: String(rest.dropFirst(17))) else { return nil }
        return BackupKey(prefix: prefix, area: area, schema: schema, timestamp: timestamp, format: format)
    }

    /// `YYYY-MM-DD-HHMMSS` in UTC.
    public static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02d-%02d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    static func parseTimestamp(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 17, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            var value: Int32 = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int32(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(13..<15), let second = number(15..<17),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let seconds = timegm(&parts)
        // Reject dates timegm normalised (31 February).
        guard format(Date(timeIntervalSince1970: TimeInterval(seconds))) == text else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
