import Foundation
import NIOCore

/// Counts the rows of each table in a plain-format dump as it streams by, from its
/// `COPY <table> (<columns>) FROM stdin;` … `\.` blocks: one line, one row. Lines may be split across chunks.
///
/// Data lines cannot contain a raw newline (COPY's text format escapes it as `\n`), so counting lines is
/// counting rows.
public struct CopyRowCounter: Sendable {
    /// Rows per table, by the table name exactly as the COPY statement writes it (`"Clínica ""Sur""".patients`).
    public private(set) var rowCounts: [String: Int64] = [:]
    private var currentTable: String?
    private var partialLine: [UInt8] = []
    /// Long data lines are not kept whole: only whether they could still be `\.` matters.
    private var partialLength = 0

    public init() {}

    public mutating func consume(_ chunk: ByteBuffer) {
        chunk.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return }
            var start = 0
            // memchr finds newlines at memory speed; a byte loop here cost seconds per GiB of dump.
            while start < raw.count, let found = memchr(base + start, 0x0A, raw.count - start) {
                let index = base.distance(to: UnsafeRawPointer(found))
                line(raw, start, index)
                start = index + 1
            }
            if start < raw.count {
                append(raw, start, raw.count)
            }
        }
    }

    private mutating func append(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) {
        partialLength += end - start
        // Inside a COPY block only a line's first two bytes matter (is it `\.`?); outside, a header line.
        let limit = currentTable == nil ? 1 << 16 : 2
        let room = limit - partialLine.count
        if room > 0 {
            partialLine.append(contentsOf: raw[start..<min(end, start + room)])
        }
    }

    private mutating func line(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) {
        append(raw, start, end)
        defer {
            partialLine.removeAll(keepingCapacity: true)
            partialLength = 0
        }
        if let table = currentTable {
            if partialLength == 2, partialLine.count >= 2, partialLine[0] == UInt8(ascii: "\\"), partialLine[1] == UInt8(ascii: ".") {
                currentTable = nil
            } else {
                rowCounts[table, default: 0] += 1
            }
            return
        }
        guard partialLine.starts(with: Self.copyPrefix), partialLine.count > Self.copySuffix.count,
              Array(partialLine.suffix(Self.copySuffix.count)) == Self.copySuffix
        else { return }
        let statement = String(decoding: partialLine.dropFirst(Self.copyPrefix.count).dropLast(Self.copySuffix.count), as: UTF8.self)
        // "<table> (<columns>)" or just "<table>": the name ends at " (" outside quotes.
        let table = DumpInspector.qualifiedPrefix(statement)
        currentTable = table
        rowCounts[table, default: 0] += 0
    }

    private static let copyPrefix = Array("COPY ".utf8)
    private static let copySuffix = Array(" FROM stdin;".utf8)
}
