import Foundation
import NIOCore

/// Reads a plain-format pg_dump as it streams by and tells whether it is a complete dump of one schema: its
/// closing `-- PostgreSQL database dump complete` line, the versions in its header, and every schema its
/// `CREATE SCHEMA`, `CREATE TABLE`, `CREATE SEQUENCE`, `CREATE VIEW` and `COPY` statements name. COPY data is
/// skipped (a clinic's notes may hold any text). For `adopt`: the old system's backups carry no manifest.
public struct DumpInspector: Sendable {
    public private(set) var pgDumpVersion: String?
    public private(set) var serverVersion: String?
    /// Every schema a statement created objects in or loaded rows into.
    public private(set) var schemas: Set<String> = []
    /// Schemas (of ``watching``) that some statement names anywhere, `name.` outside COPY data: a dump that
    /// reads or changes another clinic's tables (`CREATE TABLE x.t AS SELECT * FROM other.t`).
    public private(set) var referenced: Set<String> = []
    /// The schemas whose qualified names must not appear (the other clinics).
    public var watching: Set<String> = [] {
        didSet { watchedForms = watching.map { ($0, BackupSchema.display($0) + ".") } }
    }
    private var watchedForms: [(name: String, form: String)] = []
    /// Whether the closing line was seen with nothing after it but comment dashes (and pg_dump 17's
    /// `\unrestrict`).
    public private(set) var endsComplete = false
    private var inCopy = false
    private var partial: [UInt8] = []
    private var partialTooLong = false

    public static let completeLine = "-- PostgreSQL database dump complete"

    public init() {}

    public var isComplete: Bool { endsComplete && !inCopy }

    public mutating func consume(_ chunk: ByteBuffer) {
        for byte in chunk.readableBytesView {
            if byte == 0x0A {
                if !partialTooLong { line(String(decoding: partial, as: UTF8.self)) } else { endsComplete = false }
                partial.removeAll(keepingCapacity: true)
                partialTooLong = false
            } else if partial.count < 8192 {
                partial.append(byte)
            } else {
                partialTooLong = true
            }
        }
    }

    /// The end of the stream: a last line without a newline counts too.
    public mutating func finish() {
        if !partial.isEmpty {
            line(String(decoding: partial, as: UTF8.self))
            partial.removeAll()
        }
    }

    private mutating func line(_ text: String) {
        if inCopy {
            if text == "\\." { inCopy = false }
            endsComplete = false
            return
        }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        if text == Self.completeLine {
            endsComplete = true
        } else if !(text == "--" || text.hasPrefix("\\unrestrict ")) {
            endsComplete = false
        }
        if !text.hasPrefix("--") {
            for (name, form) in watchedForms where !referenced.contains(name) && Self.names(form, in: text) { referenced.insert(name) }
        }
        if let version = text.value(after: "-- Dumped by pg_dump version ") { pgDumpVersion = version }
        if let version = text.value(after: "-- Dumped from database version ") { serverVersion = version }
        if text.hasPrefix("CREATE SCHEMA "), text.hasSuffix(";") {
            if let name = QualifiedName.parseIdentifier(String(text.dropFirst("CREATE SCHEMA ".count).dropLast())) { schemas.insert(name) }
            return
        }
        for prefix in ["CREATE TABLE ", "CREATE UNLOGGED TABLE ", "CREATE SEQUENCE ", "CREATE VIEW ", "CREATE MATERIALIZED VIEW ", "COPY "] where text.hasPrefix(prefix) {
            let rest = text.dropFirst(prefix.count)
            let name = Self.qualifiedPrefix(String(rest))
            if let parsed = QualifiedName.parse(name) { schemas.insert(parsed.schema) }
            if prefix == "COPY ", text.hasSuffix(" FROM stdin;") { inCopy = true }
            return
        }
    }

    /// Whether `text` holds `form` (`name.`) where it starts an identifier (not inside `maxname.`).
    static func names(_ form: String, in text: String) -> Bool {
        var searchFrom = text.startIndex
        while let found = text.range(of: form, range: searchFrom..<text.endIndex) {
            if found.lowerBound == text.startIndex { return true }
            let before = text[text.index(before: found.lowerBound)]
            if !(before.isLetter || before.isNumber || before == "_" || before == "\"" || before == "$") { return true }
            searchFrom = found.upperBound
        }
        return false
    }

    /// The `schema.table` at the start of `text`, up to the first space or `(` outside quotes.
    static func qualifiedPrefix(_ text: String) -> String {
        var quoted = false
        var end = text.endIndex
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" { quoted.toggle() }
            if !quoted, character == " " || character == "(" { end = index; break }
            index = text.index(after: index)
        }
        return String(text[..<end])
    }
}

extension String {
    fileprivate func value(after prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces) : nil
    }
}

extension QualifiedName {
    /// One identifier as pg_dump writes it: bare, or double-quoted with `"` doubled.
    static func parseIdentifier(_ text: String) -> String? {
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
            return String(text.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
        }
        return text.contains(where: { $0 == " " || $0 == "." || $0 == "\"" }) || text.isEmpty ? nil : text
    }
}
