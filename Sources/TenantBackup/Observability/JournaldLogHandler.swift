import CSystemd
import Foundation
import Logging

/// A swift-log handler writing journald's native protocol (`sd_journal_sendv`), so every log line carries
/// structured fields: `TENANT=`, `S3_KEY=`, `BYTES=`, `DURATION_MS=`, `CYCLE_ID=`, `PRIORITY=`,
/// `CODE_FILE=`, `CODE_LINE=`, `CODE_FUNC=`, `SYSLOG_IDENTIFIER=tenant-backup`. An operator filters with
/// `journalctl -u tenant-backup TENANT=bienestar`.
///
/// swift-log metadata keys become journald field names: upper case, every character outside `[A-Z0-9_]`
/// replaced by `_`, and leading underscores or digits removed (journald rejects such names). `MESSAGE`
/// also carries the fields as logfmt, so plain `journalctl` output stays readable.
public struct JournaldLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let identifier: String

    public init(label: String, level: Logger.Level = .info, identifier: String = "tenant-backup") {
        self.label = label
        self.logLevel = level
        self.identifier = identifier
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Whether stderr is connected to the journal: `$JOURNAL_STREAM` names its device and inode
    /// (systemd.exec(5)), which is how systemd says "log natively".
    public static func standardErrorIsJournal(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let stream = environment["JOURNAL_STREAM"] else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    public func log(event: LogEvent) {
        let merged = mergedMetadata(event)
        var message = event.message.description
        for key in merged.keys.sorted() {
            message += " \(LogfmtLogHandler.fieldName(key))=\(LogfmtLogHandler.quote(LogfmtLogHandler.text(merged[key]!)))"
        }
        var fields = [
            "MESSAGE=\(message)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "LOGGER=\(label)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
        ]
        var used: Set<String> = ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC"]
        for key in merged.keys.sorted() {
            guard let name = Self.fieldName(key), used.insert(name).inserted else { continue }
            fields.append("\(name)=\(LogfmtLogHandler.text(merged[key]!))")
        }
        Self.send(fields)
    }

    /// journald's field name for a metadata key, or `nil` when nothing valid remains.
    static func fieldName(_ key: String) -> String? {
        var name = String(key.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
        while let first = name.first, first == "_" || first.isNumber { name.removeFirst() }
        guard !name.isEmpty else { return nil }
        return String(name.prefix(64))
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// One entry, each field one iovec into a single buffer; values may hold newlines (the protocol carries them).
    static func send(_ fields: [String]) {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = bytes.count
            bytes.append(contentsOf: field.utf8)
            ranges.append(start..<bytes.count)
        }
        bytes.withUnsafeMutableBytes { buffer in
            let vectors = ranges.map { range in iovec(iov_base: buffer.baseAddress! + range.lowerBound, iov_len: range.count) }
            _ = sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }
}
