import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a plain-format dump the way psql will, before psql sees it, and refuses it whole when it holds
/// anything pg_dump never writes for one schema: a psql meta-command other than pg_dump's own
/// `\restrict`/`\unrestrict` pair, transaction control, `DO`, roles, `COPY … PROGRAM` or a server file, a
/// `SET` that changes how the rest is read (`search_path`, `client_encoding`, `standard_conforming_strings`,
/// `role`), a `SELECT` other than pg_dump's `set_config('search_path', '', false)` and `setval` of the dump's
/// own sequences, or an incomplete dump (no closing `-- PostgreSQL database dump complete`, a COPY or a
/// statement cut off).
///
/// Its lexer follows psql's (`psqlscan.l`): single-quoted, `E'…'` and dollar-quoted strings, quoted
/// identifiers, nested block comments, parenthesis depth and the `BEGIN … END` of SQL-standard function
/// bodies decide where a statement ends; a backslash outside all of those starts a meta-command, anywhere
/// on a line. COPY data (after `COPY … FROM stdin;` up to the `\.` line) is data, never read as SQL.
///
/// As a transform it passes every byte through except pg_dump's `\restrict`/`\unrestrict` lines: the restore
/// puts its own `\restrict` (a key the dump cannot know) in front, so psql itself refuses any meta-command
/// the filter might have missed.
///
/// - Important: a text filter cannot see SQL built at run time (`EXECUTE` of a concatenated string inside a
///   function a trigger calls). The manifest's signature is what keeps a bucket writer out; this filter and
///   the restore's transaction guard are the layers behind it.
public struct DumpFilter: StreamTransform, Sendable {
    /// Why a dump was refused: what was found, on which line.
    public struct Refusal: Error, Equatable, CustomStringConvertible, Sendable {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// What the dump is allowed to hold besides one schema's objects.
    public enum Policy: Sendable, Equatable {
        /// A tenant's dump: `CREATE EXTENSION` is refused (pg_dump writes extensions only in the shared dump).
        case tenant
        /// A shared schema's dump, made with `--extension='*'`.
        case shared
        /// An operator's `--after-restore` script: plain SQL statements (DML included), no COPY, no
        /// meta-commands, no transaction control, no roles, no server programs or files.
        case afterRestore
    }

    public let schema: String
    public let policy: Policy
    /// Schemas no statement may name (`name.` outside COPY data): the target's other clinics. A dump that
    /// reads or changes another clinic's objects (`CREATE TABLE x AS SELECT * FROM other.t`, `ALTER TABLE
    /// other.t …`, `COMMENT ON TABLE other.t`) is refused.
    public var forbiddenSchemas: Set<String> = [] {
        didSet { forbiddenForms = forbiddenSchemas.sorted().map { ($0, BackupSchema.display($0) + ".") } }
    }
    private var forbiddenForms: [(name: String, form: String)] = []

    public init(schema: String, policy: Policy) {
        self.schema = schema
        self.policy = policy
    }

    // MARK: Lexer state

    private enum State: Sendable, Equatable {
        case normal
        case lineComment
        case blockComment(depth: Int)
        case singleQuote(extended: Bool)
        case doubleQuote
        case dollarTag([UInt8])
        case dollarBody
        case metaLine
        case afterCopy
        case copyData
    }

    private var state: State = .normal
    /// In `normal`: the previous byte, for two-byte tokens (`--`, `/*`, `*/` in comments, `E'`).
    private var previous: UInt8 = 0
    /// Whether the previous byte in `normal` continued an identifier (so `$` and `E` are part of it).
    private var inIdentifier = false
    /// Whether the current identifier is exactly one `E`/`e` so far.
    private var identifierIsE = false
    /// In a block comment: `*` or `/` seen last.
    private var commentPrevious: UInt8 = 0
    /// In an `E'…'` string: a backslash escapes the next byte.
    private var escapeNext = false
    /// In a single-quoted string: a quote just seen (`''` continues the string).
    private var quotePending = false
    private var doubleQuotePending = false
    private var dollarOpenTag: [UInt8] = []
    private var dollarMatch = 0
    private var parenDepth = 0
    private var beginDepth = 0
    /// Inside psql's `:name` token.
    private var inVariable = false
    /// Inside a number: 1 digits (and a point), 2 just after its `e`, 3 after the exponent's sign, 4 in the
    /// exponent's digits; 0 outside one.
    private var numberPhase: UInt8 = 0
    /// The last `:` ended a `::` cast.
    private var colonWasCast = false
    /// A single-quoted string just ended (only whitespace and comments since), and whether a line ended since.
    private var afterString = false
    private var newlineAfterString = false
    /// The words of the statement so far (psql's heuristic for `CREATE [OR REPLACE] FUNCTION|PROCEDURE`).
    private var leadingWords: [UInt8] = []
    private var identifierCount = 0
    private var currentIdentifier: [UInt8] = []
    /// The statement's text so far (comments left out, whitespace collapsed), up to ``statementLimit``.
    private var statement: [UInt8] = []
    private var statementOverflow = false
    private var statementHasContent = false
    private var metaText: [UInt8] = []
    private var lineNumber = 1
    private var atLineStart = true
    private var copyLine: [UInt8] = []
    private var copyLineTooLong = false
    /// pg_dump's `\restrict` key, once seen; its `\unrestrict` must name the same.
    private var restrictKey: [UInt8]?
    private var unrestricted = false
    private var statementSinceComplete = false
    private var sawCompleteLine = false
    private var commentText: [UInt8] = []
    /// The first refusal; once set, every later call throws it.
    public private(set) var refusal: Refusal?
    /// Where pg_dump's `\restrict` and `\unrestrict` lines are in the input (byte offsets, newline included):
    /// what ``filter(_:)`` drops. A restore finds them while it verifies, and cuts them when it applies the
    /// verified copy without reading it again (``DumpCuts``).
    public private(set) var cuts: [Range<Int64>] = []
    /// Whether ``filter(_:)`` returns what it let through; a filter that only judges returns nothing.
    public var emitsOutput = true
    /// pg_dump's `ALTER … OWNER TO …;` statements and its `CREATE SCHEMA <schema>;` (byte ranges, from the end
    /// of the statement before): what a restore applied by a role that is not a superuser leaves out (that role
    /// cannot give its objects away, and its schema is made for it beforehand; the restore hands them over
    /// afterwards). Empty unless ``recordsOwnerStatements``.
    public private(set) var ownerStatements: [Range<Int64>] = []
    public var recordsOwnerStatements = false
    /// Bytes fed before the current chunk, and where the open meta line started.
    private var consumed: Int64 = 0
    private var metaStart: Int64 = 0
    /// The offset of the byte being lexed (outside COPY data), and where the current statement began.
    private var offset: Int64 = 0
    private var statementStart: Int64 = 0
    static let ownerStatementLimit = 1_000_000

    static let statementLimit = 16 << 10
    static let completeLine = Array("-- PostgreSQL database dump complete".utf8)

    /// Whether the dump ended complete: pg_dump's closing line seen, nothing after it but comments and its
    /// `\unrestrict`, and no statement, string, comment or COPY left open. Valid after ``finish()``.
    public private(set) var isComplete = false

    // MARK: StreamTransform

    public mutating func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer {
        do {
            return try filter(input)
        } catch {
            throw StreamTransformError(codec: "dump filter", message: error.description)
        }
    }

    public mutating func finish() throws(StreamTransformError) -> ByteBuffer {
        do {
            try end()
        } catch {
            throw StreamTransformError(codec: "dump filter", message: error.description)
        }
        return ByteBuffer()
    }

    /// Filters one chunk: returns it without pg_dump's `\restrict` lines, or throws the first refusal.
    public mutating func filter(_ input: ByteBuffer) throws(Refusal) -> ByteBuffer {
        if let refusal { throw refusal }
        var output = ByteBuffer()
        let emits = emitsOutput
        if emits { output.reserveCapacity(input.readableBytes) }
        var failure: Refusal?
        let base = consumed
        defer { consumed += Int64(input.readableBytes) }
        input.withUnsafeReadableBytes { bytes in
            var copyFrom = 0
            var index = 0
            let count = bytes.count
            while index < count {
                if state == .copyData {
                    // Fast path, a line at a time: memchr finds its end and any NUL in it; only a line's first
                    // bytes are kept, to find the `\.` that ends the data.
                    let start = bytes.baseAddress! + index
                    let remaining = count - index
                    let newline = memchr(start, 0x0A, remaining)
                    let length = newline.map { UnsafeRawPointer($0) - start } ?? remaining
                    if length > 0, memchr(start, 0, length) != nil {
                        failure = refuse("a NUL byte in COPY data: pg_dump never writes one")
                        return
                    }
                    let kept = min(max(0, 4 - copyLine.count), length)
                    if kept > 0 { copyLine.append(contentsOf: UnsafeRawBufferPointer(start: start, count: kept)) }
                    if length > kept { copyLineTooLong = true }
                    index += length
                    guard newline != nil else { continue }
                    if isEndOfCopy() {
                        state = .normal
                        resetStatement()
                        statementStart = base + Int64(index) + 1
                    }
                    copyLine.removeAll(keepingCapacity: true)
                    copyLineTooLong = false
                    lineNumber += 1
                    atLineStart = true
                    index += 1
                    continue
                }
                let byte = bytes[index]
                if byte == 0 {
                    failure = refuse("a NUL byte: psql drops what follows it on its line, so the dump would not run as it reads; pg_dump never writes one")
                    return
                }
                let wasMeta = state == .metaLine
                offset = base + Int64(index)
                do throws(Refusal) {
                    try consume(byte)
                } catch {
                    failure = error
                    return
                }
                if state == .metaLine && !wasMeta {
                    // The meta line starts at this backslash: emit what came before it.
                    if emits { output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copyFrom..<index])) }
                    copyFrom = index
                    metaStart = base + Int64(index)
                } else if wasMeta && state != .metaLine {
                    // The meta line (pg_dump's \restrict or \unrestrict) ended with this newline: drop it.
                    copyFrom = index + 1
                    cuts.append(metaStart..<(base + Int64(index) + 1))
                }
                index += 1
            }
            if state != .metaLine, emits {
                output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copyFrom..<count]))
            }
        }
        if let failure {
            refusal = failure
            throw failure
        }
        return output
    }

    /// The end of the dump: throws unless it is complete (see ``isComplete``).
    public mutating func end() throws(Refusal) {
        if let refusal { throw refusal }
        func incomplete(_ what: String) -> Refusal {
            let refusal = Refusal(line: lineNumber, reason: "the dump ends \(what): it is incomplete (cut short?)")
            self.refusal = refusal
            return refusal
        }
        switch state {
        case .copyData: throw incomplete("inside the data of a COPY")
        case .singleQuote where quotePending, .doubleQuote where doubleQuotePending: break
        case .dollarTag: state = .normal
        case .singleQuote, .doubleQuote, .dollarBody: throw incomplete("inside a quoted string")
        case .blockComment: throw incomplete("inside a comment")
        case .metaLine:
            try endMeta()
            cuts.append(metaStart..<consumed)
        case .lineComment: endLineComment()
        case .normal, .afterCopy: break
        }
        if statementHasContent { throw incomplete("in the middle of a statement") }
        if policy == .afterRestore {
            isComplete = true
            return
        }
        if restrictKey != nil && !unrestricted { throw incomplete("before pg_dump's \\unrestrict line") }
        guard sawCompleteLine, !statementSinceComplete else {
            throw incomplete("without pg_dump's closing line \"-- PostgreSQL database dump complete\"")
        }
        isComplete = true
    }

    // MARK: Bytes

    private func isEndOfCopy() -> Bool {
        !copyLineTooLong && (copyLine == [0x5C, 0x2E] || copyLine == [0x5C, 0x2E, 0x0D])
    }

    private mutating func refuse(_ reason: String) -> Refusal {
        let refusal = Refusal(line: lineNumber, reason: reason)
        self.refusal = refusal
        return refusal
    }

    private static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte >= 0x80
    }

    private static func isIdentifierContinue(_ byte: UInt8) -> Bool {
        isIdentifierStart(byte) || (byte >= 0x30 && byte <= 0x39) || byte == 0x24
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C || byte == 0x0B
    }

    private mutating func append(_ byte: UInt8) {
        if Self.isSpace(byte) {
            if let last = statement.last, last != 0x20 { appendRaw(0x20) }
            return
        }
        statementHasContent = true
        appendRaw(byte)
    }

    private mutating func appendRaw(_ byte: UInt8) {
        if statement.count < Self.statementLimit { statement.append(byte) } else { statementOverflow = true }
    }

    private mutating func consume(_ byte: UInt8) throws(Refusal) {
        let lineStart = atLineStart
        atLineStart = byte == 0x0A
        defer { if byte == 0x0A { lineNumber += 1 } }
        switch state {
        case .copyData:
            break  // handled by the caller
        case .lineComment:
            // psql's comment ends at a carriage return too ({non_newline} is [^\n\r]).
            if byte == 0x0A || byte == 0x0D {
                endLineComment()
                state = .normal
                previous = 0
                if afterString { newlineAfterString = true }
                append(0x20)
            } else if commentText.count < 80 {
                commentText.append(byte)
            }
        case .blockComment(let depth):
            if commentPrevious == 0x2A && byte == 0x2F {
                commentPrevious = 0
                state = depth == 1 ? .normal : .blockComment(depth: depth - 1)
                if depth == 1 { previous = 0x20; append(0x20) }
            } else if commentPrevious == 0x2F && byte == 0x2A {
                commentPrevious = 0
                state = .blockComment(depth: depth + 1)
            } else {
                commentPrevious = byte
            }
        case .singleQuote(let extended):
            if quotePending {
                quotePending = false
                if byte == 0x27 {
                    appendRaw(byte)
                    return
                }
                state = .normal
                previous = 0x27
                inIdentifier = false
                afterString = true
                newlineAfterString = false
                try normal(byte, lineStart: lineStart)
                return
            }
            appendRaw(byte)
            if extended && escapeNext {
                escapeNext = false
            } else if extended && byte == 0x5C {
                escapeNext = true
            } else if byte == 0x27 {
                quotePending = true
            }
        case .doubleQuote:
            if doubleQuotePending {
                doubleQuotePending = false
                if byte == 0x22 {
                    appendRaw(byte)
                    return
                }
                state = .normal
                previous = 0x22
                inIdentifier = false
                try normal(byte, lineStart: lineStart)
                return
            }
            appendRaw(byte)
            if byte == 0x22 { doubleQuotePending = true }
        case .dollarTag(var tag):
            appendRaw(byte)
            if byte == 0x24 {
                dollarOpenTag = tag
                dollarMatch = 0
                state = .dollarBody
            } else if tag.isEmpty ? Self.isIdentifierStart(byte) : (Self.isIdentifierContinue(byte) && byte != 0x24) {
                guard tag.count < 64 else { throw refuse("a dollar-quote tag longer than 64 bytes: pg_dump never writes one") }
                tag.append(byte)
                state = .dollarTag(tag)
            } else {
                // Not a dollar quote after all (`$foo` without a closing `$`): back to normal for this byte.
                state = .normal
                previous = 0
                inIdentifier = false
                statement.removeLast()
                try normal(byte, lineStart: lineStart)
            }
        case .dollarBody:
            // Closing delimiter: `$` + tag + `$`.
            if statement.count < Self.statementLimit { statement.append(byte) } else { statementOverflow = true }
            let delimiter = dollarOpenTag.count + 2
            if dollarMatch == 0 {
                if byte == 0x24 { dollarMatch = 1 }
            } else if dollarMatch < delimiter - 1 {
                if byte == dollarOpenTag[dollarMatch - 1] {
                    dollarMatch += 1
                } else {
                    dollarMatch = byte == 0x24 ? 1 : 0
                }
            } else {
                if byte == 0x24 {
                    state = .normal
                    previous = 0x24
                    inIdentifier = false
                    dollarMatch = 0
                } else {
                    dollarMatch = 0
                }
            }
        case .metaLine:
            if byte == 0x0A {
                try endMeta()
                state = .normal
                previous = 0
            } else if metaText.count < 512 {
                metaText.append(byte)
            } else {
                throw refuse("a psql meta-command (\\\(printable(metaText.prefix(20)))...): pg_dump writes none but its own \\restrict and \\unrestrict")
            }
        case .afterCopy:
            if byte == 0x0A {
                state = .copyData
                copyLine.removeAll(keepingCapacity: true)
                copyLineTooLong = false
                atLineStart = true
            } else if !(byte == 0x20 || byte == 0x09 || byte == 0x0D) {
                throw refuse("text after COPY ... FROM stdin; on the same line: pg_dump writes the data on the next line")
            }
        case .normal:
            try normal(byte, lineStart: lineStart)
        }
    }

    private mutating func normal(_ byte: UInt8, lineStart: Bool) throws(Refusal) {
        let before = previous
        previous = byte
        // psql's `:name` (a variable reference) is one token, never an identifier: `a[1:case …]` must not count
        // a CASE that psql does not see.
        if inVariable {
            if Self.isIdentifierContinue(byte) && byte != 0x24 {
                append(byte)
                return
            }
            inVariable = false
        }
        if before == 0x3A, byte != 0x3A, !colonWasCast, Self.isIdentifierContinue(byte), byte != 0x24 {
            inVariable = true
            if inIdentifier { endIdentifier() }
            append(byte)
            return
        }
        colonWasCast = byte == 0x3A && before == 0x3A
        // A string continued on another line ('a'<newline>'b' is one string to psql, and an E'…' one keeps its
        // escapes): pg_dump never writes one, and the filter would read the second part differently.
        if afterString {
            if byte == 0x0A || byte == 0x0D {
                newlineAfterString = true
            } else if byte == 0x27 && newlineAfterString {
                throw refuse("a string continued on another line: pg_dump never writes one")
            } else if !Self.isSpace(byte) && !(byte == 0x2D) && !(byte == 0x2F) && !(byte == 0x2A && before == 0x2F) {
                afterString = false
                newlineAfterString = false
            }
        }
        // Identifiers (psql: {ident_start}{ident_cont}*, `$` continues one).
        if inIdentifier && Self.isIdentifierContinue(byte) {
            currentIdentifier.append(byte)
            identifierIsE = false
            append(byte)
            return
        }
        if inIdentifier { endIdentifier() }
        // Numbers as psql 15 reads them: a word run into a number (`1E'…'`, `1begin`) is one "junk" token to
        // psql, where a lexer that knows no numbers would see an E'…' string or a BEGIN. pg_dump writes
        // numbers (`1`, `2.5`, `1e+30`) followed by a space or punctuation only.
        if numberPhase != 0 {
            switch (numberPhase, byte) {
            case (1, 0x30...0x39), (1, 0x2E):
                append(byte)
                return
            case (1, 0x45), (1, 0x65):
                numberPhase = 2
                append(byte)
                return
            case (2, 0x2B), (2, 0x2D):
                numberPhase = 3
                append(byte)
                return
            case (2, 0x30...0x39), (3, 0x30...0x39), (4, 0x30...0x39):
                numberPhase = 4
                append(byte)
                return
            case (2, _), (3, _):
                throw refuse("a number with an unfinished exponent: psql reads it differently; pg_dump never writes one")
            default:
                numberPhase = 0
                if Self.isIdentifierStart(byte) {
                    throw refuse("a number run into a word or a string's prefix (as 1E'…' or 1begin): psql reads it as one token; pg_dump never writes one")
                }
            }
        } else if byte >= 0x30 && byte <= 0x39 {
            numberPhase = 1
            identifierIsE = false
            append(byte)
            return
        }
        if Self.isIdentifierStart(byte) {
            inIdentifier = true
            identifierIsE = byte == 0x45 || byte == 0x65
            currentIdentifier = [byte]
            append(byte)
            return
        }
        let wasE = identifierIsE
        identifierIsE = false
        switch byte {
        case 0x2D where before == 0x2D:  // --
            statement.removeLast()
            if statement.last == 0x20 { statement.removeLast() }
            if statement.isEmpty { statementHasContent = false } else { statementHasContent = true }
            state = .lineComment
            commentText = [0x2D, 0x2D]
        case 0x2A where before == 0x2F:  // /*
            statement.removeLast()
            if statement.isEmpty { statementHasContent = false }
            state = .blockComment(depth: 1)
            commentPrevious = 0
        case 0x27:
            append(byte)
            escapeNext = false
            quotePending = false
            state = .singleQuote(extended: wasE)
        case 0x22:
            append(byte)
            doubleQuotePending = false
            state = .doubleQuote
        case 0x24:
            append(byte)
            state = .dollarTag([])
        case 0x5C:  // a backslash outside quotes: a psql meta-command
            if lineStart && !statementHasContent && policy != .afterRestore {
                state = .metaLine
                metaText = []
            } else {
                throw refuse("a psql meta-command (a backslash outside quotes); pg_dump writes none but its own \\restrict and \\unrestrict, each on a line of its own")
            }
        case 0x28:
            parenDepth += 1
            append(byte)
        case 0x29:
            if parenDepth > 0 { parenDepth -= 1 }
            append(byte)
        case 0x3B where parenDepth == 0 && beginDepth == 0:
            try endStatement()
        default:
            append(byte)
        }
    }

    private mutating func endIdentifier() {
        inIdentifier = false
        let word = currentIdentifier.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
        currentIdentifier = []
        // psql's heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN ... END (and CASE inside it)
        // keep semicolons from ending the statement.
        let tracked: Set<[UInt8]> = [Array("create".utf8), Array("function".utf8), Array("procedure".utf8), Array("or".utf8), Array("replace".utf8)]
        if identifierCount < 4 && tracked.contains(word) { leadingWords.append(word[0]) } else if identifierCount < 4 { leadingWords.append(0) }
        identifierCount += 1
        let w = leadingWords + [UInt8](repeating: 0, count: max(0, 4 - leadingWords.count))
        let isFunction = w[0] == 0x63 && (w[1] == 0x66 || w[1] == 0x70 || (w[1] == 0x6F && w[2] == 0x72 && (w[3] == 0x66 || w[3] == 0x70)))
        if isFunction && parenDepth == 0 {
            if word == Array("begin".utf8) {
                beginDepth += 1
            } else if word == Array("case".utf8) {
                if beginDepth >= 1 { beginDepth += 1 }
            } else if word == Array("end".utf8) {
                if beginDepth > 0 { beginDepth -= 1 }
            }
        }
    }

    private mutating func endLineComment() {
        if commentText == Self.completeLine && !statementHasContent {
            sawCompleteLine = true
            statementSinceComplete = false
        }
        commentText = []
    }

    private mutating func endMeta() throws(Refusal) {
        let text = metaText.last == 0x0D ? Array(metaText.dropLast()) : metaText
        metaText = []
        func key(after command: String) -> [UInt8]? {
            let prefix = Array(command.utf8)
            guard text.count > prefix.count, Array(text.prefix(prefix.count)) == prefix else { return nil }
            let key = Array(text.dropFirst(prefix.count))
            guard !key.isEmpty, key.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else { return nil }
            return key
        }
        if let key = key(after: "restrict "), restrictKey == nil, !statementSinceCompleteOrAny {
            restrictKey = key
            return
        }
        if let key = key(after: "unrestrict "), let restrictKey, key == restrictKey, !unrestricted {
            unrestricted = true
            return
        }
        throw refuse("a psql meta-command (\\\(printable(text.prefix(24)))): pg_dump writes none but its own \\restrict and \\unrestrict")
    }

    /// `\restrict` is the first thing pg_dump writes after its header comments.
    private var statementSinceCompleteOrAny: Bool { statementsSeen > 0 }
    private var statementsSeen = 0

    private func printable<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        String(decoding: bytes.map { $0 < 0x20 || $0 == 0x7F ? 0x3F : $0 }, as: UTF8.self)
    }

    private mutating func resetStatement() {
        statement.removeAll(keepingCapacity: true)
        statementOverflow = false
        statementHasContent = false
        parenDepth = 0
        beginDepth = 0
        leadingWords = []
        identifierCount = 0
        previous = 0
        inIdentifier = false
        identifierIsE = false
        inVariable = false
        colonWasCast = false
        afterString = false
        newlineAfterString = false
    }

    // MARK: Statements

    private mutating func endStatement() throws(Refusal) {
        defer { if state != .afterCopy { resetStatement() } }
        if inIdentifier { endIdentifier() }
        while statement.last == 0x20 { statement.removeLast() }
        while statement.first == 0x20 { statement.removeFirst() }
        let start = statementStart
        statementStart = offset + 1
        guard statementHasContent, !statement.isEmpty else { return }
        statementsSeen += 1
        statementSinceComplete = true
        if unrestricted { throw refuse("a statement after pg_dump's \\unrestrict line") }
        let text = String(decoding: statement, as: UTF8.self)
        if let problem = StatementPolicy.problem(text, overflow: statementOverflow, schema: schema, policy: policy) {
            throw refuse(problem)
        }
        if !forbiddenSchemas.isEmpty, let name = StatementPolicy.qualifiers(in: text).first(where: forbiddenSchemas.contains) {
            throw refuse("a statement that names schema \(BackupSchema.display(name)), another clinic's: a dump of \(BackupSchema.display(schema)) acts in that schema alone")
        }
        if policy != .afterRestore, StatementPolicy.isCopyFromStdin(text) {
            state = .afterCopy
            resetStatement()
        }
        if recordsOwnerStatements, StatementPolicy.isOwnerStatement(text) || text == "CREATE SCHEMA " + BackupSchema.display(schema) {
            guard ownerStatements.count < Self.ownerStatementLimit else {
                throw refuse("more than \(Self.ownerStatementLimit) OWNER TO statements: not a dump of one clinic's schema")
            }
            ownerStatements.append(start..<(offset + 1))
        }
    }
}

extension DumpFilter {
    /// A filter that only judges (its output is dropped): fed chunk by chunk, it keeps the first refusal.
    final class Checker {
        private var filter: DumpFilter
        private(set) var refusal: Refusal?

        /// pg_dump's `\restrict` lines found so far (see ``DumpFilter/cuts``).
        var cuts: [Range<Int64>] { filter.cuts }

        var ownerStatements: [Range<Int64>] { filter.ownerStatements }

        init(schema: String, policy: Policy, forbiddenSchemas: Set<String> = [], ownerStatements: Bool = false) {
            filter = DumpFilter(schema: schema, policy: policy)
            filter.forbiddenSchemas = forbiddenSchemas
            filter.emitsOutput = false
            filter.recordsOwnerStatements = ownerStatements
        }

        func feed(_ chunk: ByteBuffer) {
            guard refusal == nil else { return }
            do { _ = try filter.filter(chunk) } catch { refusal = error }
        }

        func end() {
            guard refusal == nil else { return }
            do { try filter.end() } catch { refusal = error }
        }
    }
}

/// Which statements a dump may hold: the statements pg_dump writes for one schema, and nothing else.
enum StatementPolicy {
    static func words(_ text: String, count: Int) -> [String] {
        var words: [String] = []
        var current = ""
        for character in text {
            if character.isLetter || character == "_" {
                current.append(character)
            } else {
                if !current.isEmpty { words.append(current.uppercased()); current = "" }
                if words.count >= count { break }
                if !character.isWhitespace { break }
            }
            if words.count >= count { break }
        }
        if !current.isEmpty, words.count < count { words.append(current.uppercased()) }
        return words
    }

    static let transactionControl: Set<String> = [
        "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE", "SET TRANSACTION",
    ]
    static let settingsPgDumpWrites: Set<String> = [
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "transaction_timeout", "client_encoding",
        "standard_conforming_strings", "check_function_bodies", "xmloption", "client_min_messages", "row_security", "default_tablespace",
        "default_table_access_method", "default_with_oids",
    ]
    /// What follows `CREATE` in a dump of one schema.
    static let creatable: Set<String> = [
        "SCHEMA", "TABLE", "UNLOGGED", "SEQUENCE", "VIEW", "MATERIALIZED", "FUNCTION", "PROCEDURE", "AGGREGATE", "TYPE", "DOMAIN", "INDEX",
        "UNIQUE", "TRIGGER", "CONSTRAINT", "RULE", "POLICY", "STATISTICS", "OPERATOR", "COLLATION", "CONVERSION", "TEXT", "FOREIGN", "OR",
    ]
    /// What follows `ALTER` in a dump of one schema.
    static let alterable: Set<String> = [
        "TABLE", "SEQUENCE", "VIEW", "MATERIALIZED", "FUNCTION", "PROCEDURE", "AGGREGATE", "TYPE", "DOMAIN", "INDEX", "SCHEMA", "DEFAULT",
        "FOREIGN", "OPERATOR", "COLLATION", "CONVERSION", "TEXT", "STATISTICS", "POLICY", "TRIGGER", "RULE",
    ]
    /// Never in an `--after-restore` script either.
    static let neverInAfterRestore: Set<String> = ["DO", "COPY", "CALL", "CHECKPOINT", "VACUUM", "LOAD", "LISTEN", "NOTIFY", "DISCARD", "RESET", "EXECUTE", "IMPORT", "REINDEX", "CLUSTER"]

    /// `ALTER <object kind> <name> OWNER TO <role>` as pg_dump writes it.
    static func isOwnerStatement(_ text: String) -> Bool {
        guard text.hasPrefix("ALTER "), let range = text.range(of: " OWNER TO ", options: .backwards) else { return false }
        let role = text[range.upperBound...]
        if role.hasPrefix("\""), role.count >= 2, role.hasSuffix("\"") {
            return !role.dropFirst().dropLast().replacingOccurrences(of: "\"\"", with: "").contains("\"")
        }
        guard let first = role.first, first.isLetter || first == "_" else { return false }
        return role.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }
    }

    static func isCopyFromStdin(_ text: String) -> Bool {
        words(text, count: 1) == ["COPY"] && text.hasSuffix(" FROM stdin")
    }

    /// Why `text` (one statement, whitespace collapsed, comments out, without its `;`) is not one pg_dump writes
    /// under `policy`, or `nil`.
    /// What no statement of a dump or an after-restore script may mention at all: settings that change how psql
    /// reads the rest (`standard_conforming_strings` off hides a COMMIT inside what this filter reads as a
    /// string), `set_config` other than pg_dump's own, and server-side files and programs.
    static func forbiddenMention(_ text: String) -> String? {
        let lower = text.lowercased()
        if lower.contains("standard_conforming_strings") || lower.contains("client_encoding") || lower.contains("backslash_quote") || lower.contains("escape_string_warning") {
            if !(lower == "set standard_conforming_strings = on" || lower == "set client_encoding = 'utf8'") {
                return "a statement that names standard_conforming_strings or client_encoding: changing them changes how psql reads the rest of the dump"
            }
        }
        if lower.contains("set_config"), text != "SELECT pg_catalog.set_config('search_path', '', false)" {
            return "set_config outside pg_dump's own SELECT pg_catalog.set_config('search_path', '', false)"
        }
        if textCallsServerFiles(text) { return "a server-side file or program function (\(text.prefix(40))...)" }
        // U&"…" and U&'…' spell any name with escapes (U&"set\005fconfig"): pg_dump never writes them.
        if lower.contains("u&\"") || lower.contains("u&'") { return "a U&\"…\" or U&'…' name or string: pg_dump never writes one, and it can spell any name" }
        return nil
    }

    static func problem(_ text: String, overflow: Bool, schema: String, policy: DumpFilter.Policy) -> String? {
        if let problem = forbiddenMention(text) { return problem }
        let head = words(text, count: 3)
        guard let first = head.first else {
            return "a statement that does not start with a keyword (\(text.prefix(24))...)"
        }
        let two = head.prefix(2).joined(separator: " ")
        if transactionControl.contains(first) || transactionControl.contains(two) {
            return "transaction control (\(first)): the restore commits only once everything verified, and nothing in a dump may end its transaction"
        }
        if ["ROLE", "USER", "GROUP"].contains(head.dropFirst().first ?? "") && ["CREATE", "ALTER", "DROP"].contains(first) {
            return "a role statement (\(two)): a dump of one schema never creates or changes roles"
        }
        if first == "SET" || first == "RESET" {
            return setProblem(text, policy: policy)
        }
        if policy == .afterRestore {
            if neverInAfterRestore.contains(first) { return "\(first) cannot run in the restore's transaction" }
            if first == "ALTER", ["SYSTEM", "DATABASE"].contains(head.dropFirst().first ?? "") { return "\(two) changes more than the restored database's rows" }
            if first == "GRANT" || first == "REVOKE", !text.uppercased().contains(" ON ") { return "\(first) of a role membership changes roles" }
            if textCallsServerFiles(text) { return "a server-side file or program function (\(text.prefix(40))...)" }
            return nil
        }
        switch first {
        case "CREATE":
            let kind = head.dropFirst().first ?? ""
            if kind == "SCHEMA" {
                let name = String(text.dropFirst("CREATE SCHEMA ".count))
                guard QualifiedName.parseIdentifier(name) == schema else {
                    return "CREATE SCHEMA \(name): a dump of schema \(BackupSchema.display(schema)) creates that schema alone"
                }
                return nil
            }
            if kind == "EXTENSION" { return policy == .shared ? nil : "CREATE EXTENSION: a clinic's dump never creates extensions (the shared dump does)" }
            if !creatable.contains(kind) { return "CREATE \(kind): pg_dump never writes it in a dump of one schema" }
            if ["TABLE", "UNLOGGED"].contains(kind), Self.hasTopLevelAs(text) {
                return "CREATE TABLE ... AS: pg_dump never writes it (it runs a query while the dump loads)"
            }
            if kind == "MATERIALIZED", !text.uppercased().hasSuffix(" WITH NO DATA") {
                return "CREATE MATERIALIZED VIEW with data: pg_dump writes it WITH NO DATA (its query would run while the dump loads)"
            }
            return nil
        case "ALTER":
            let kind = head.dropFirst().first ?? ""
            if kind == "EXTENSION", policy == .shared { return nil }
            if !alterable.contains(kind) { return "ALTER \(kind): pg_dump never writes it in a dump of one schema" }
            return nil
        case "COPY":
            if overflow { return "a COPY statement longer than any pg_dump writes" }
            return copyProblem(text, schema: schema)
        case "SELECT":
            return selectProblem(text, schema: schema)
        case "COMMENT", "SECURITY", "REFRESH":
            return nil
        case "GRANT", "REVOKE":
            if !text.uppercased().contains(" ON ") { return "\(first) of a role membership: a dump of one schema grants privileges on objects only" }
            return nil
        default:
            return "\(first): pg_dump never writes it in a dump of one schema"
        }
    }

    /// `COPY <schema>.<table> [(<columns>)] FROM stdin`, into the dump's own schema, and nothing else.
    static func copyProblem(_ text: String, schema: String) -> String? {
        let shape = "COPY ... FROM stdin (not a server-side program or file, not TO): pg_dump writes only COPY <schema>.<table> (<columns>) FROM stdin"
        guard text.hasPrefix("COPY "), text.hasSuffix(" FROM stdin") else { return shape }
        let middle = String(text.dropFirst(5).dropLast(" FROM stdin".count))
        let name = DumpInspector.qualifiedPrefix(middle)
        guard let table = QualifiedName.parse(name) else { return shape }
        guard table.schema == schema else { return "COPY into \(name), a table outside schema \(BackupSchema.display(schema))" }
        let columns = middle.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
        if columns.isEmpty { return nil }
        guard columns.hasPrefix("("), columns.hasSuffix(")") else { return shape }
        var quoted = false
        for character in columns {
            if character == "\"" { quoted.toggle() }
            if !quoted, character == "'" || character == ";" { return shape }
        }
        return quoted ? shape : nil
    }

    static func setProblem(_ text: String, policy: DumpFilter.Policy) -> String? {
        let parts = text.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return "SET without a setting" }
        let rest = String(parts[1])
        if parts[0].uppercased() == "RESET" {
            guard policy == .afterRestore else { return "RESET: pg_dump never writes it" }
            let name = rest.lowercased()
            return ["role", "session authorization", "all"].contains(name) ? "RESET \(name): the --after-restore script may not change the session's role" : nil
        }
        let name = String(rest.prefix { $0.isLetter || $0 == "_" || $0.isNumber }).lowercased()
        if ["session", "local", "role", "search_path", "transaction"].contains(name) {
            return "SET \(name): \(policy == .afterRestore ? "the --after-restore script" : "a dump") may not change the session's role, transaction or search path"
        }
        let value = rest.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
        let assigned = value.hasPrefix("=") ? value.dropFirst().trimmingCharacters(in: .whitespaces)
            : value.uppercased().hasPrefix("TO ") ? value.dropFirst(3).trimmingCharacters(in: .whitespaces) : nil
        guard let assigned else { return "SET \(name) in a form pg_dump never writes" }
        if name == "client_encoding", assigned != "'UTF8'" { return "SET client_encoding = \(assigned): only UTF8 is read the same way by psql and by this check" }
        if name == "standard_conforming_strings", assigned.lowercased() != "on" { return "SET standard_conforming_strings = \(assigned): only on is read the same way by psql and by this check" }
        if policy == .afterRestore { return nil }
        if !settingsPgDumpWrites.contains(name) { return "SET \(name): pg_dump never writes it" }
        return nil
    }

    static func selectProblem(_ text: String, schema: String) -> String? {
        if text == "SELECT pg_catalog.set_config('search_path', '', false)" { return nil }
        let setval = "SELECT pg_catalog.setval('"
        if text.hasPrefix(setval) {
            let rest = text.dropFirst(setval.count)
            // The literal: '' doubles a quote.
            var literal = ""
            var index = rest.startIndex
            var closed = false
            while index < rest.endIndex {
                let character = rest[index]
                if character == "'" {
                    let next = rest.index(after: index)
                    if next < rest.endIndex, rest[next] == "'" {
                        literal.append("'")
                        index = rest.index(after: next)
                        continue
                    }
                    closed = true
                    index = next
                    break
                }
                literal.append(character)
                index = rest.index(after: index)
            }
            let tail = rest[index...]
            guard closed, let name = QualifiedName.parse(literal) else { return "SELECT pg_catalog.setval of a sequence name pg_dump never writes" }
            guard name.schema == schema else {
                return "SELECT pg_catalog.setval of \(literal), a sequence outside schema \(BackupSchema.display(schema))"
            }
            let shape = tail.drop { $0 == "," || $0 == " " }
            let number = shape.prefix { $0.isNumber || $0 == "-" }
            let flag = shape.dropFirst(number.count)
            guard !number.isEmpty, flag == ", true)" || flag == ", false)" else { return "SELECT pg_catalog.setval in a form pg_dump never writes" }
            return nil
        }
        return "SELECT: pg_dump writes only set_config('search_path', '', false) and setval of the dump's own sequences (\(text.prefix(40))...)"
    }

    /// Every identifier of `text` that qualifies another (`x.y`, `"x" . y`), as PostgreSQL reads it: unquoted
    /// ones folded to lower case, quoted ones with `""` undone. Strings are read as text too (a false match only
    /// refuses more).
    static func qualifiers(in text: String) -> [String] {
        let bytes = Array(text.utf8)
        var names: [String] = []
        var index = 0
        func skipSpaces(_ from: Int) -> Int {
            var at = from
            while at < bytes.count, bytes[at] == 0x20 { at += 1 }
            return at
        }
        while index < bytes.count {
            let byte = bytes[index]
            var name: [UInt8]?
            var end = index
            if byte == 0x22 {
                var value: [UInt8] = []
                var at = index + 1
                while at < bytes.count {
                    if bytes[at] == 0x22 {
                        if at + 1 < bytes.count, bytes[at + 1] == 0x22 { value.append(0x22); at += 2; continue }
                        break
                    }
                    value.append(bytes[at])
                    at += 1
                }
                name = value
                end = at + 1
            } else if (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte >= 0x80 {
                var at = index
                while at < bytes.count, (bytes[at] >= 0x41 && bytes[at] <= 0x5A) || (bytes[at] >= 0x61 && bytes[at] <= 0x7A) || bytes[at] == 0x5F || bytes[at] >= 0x80
                    || (bytes[at] >= 0x30 && bytes[at] <= 0x39) || bytes[at] == 0x24
                {
                    at += 1
                }
                // Only ASCII letters fold, as PostgreSQL's downcase_identifier does for multi-byte encodings.
                name = bytes[index..<at].map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
                end = at
            }
            if let name {
                let next = skipSpaces(end)
                if next < bytes.count, bytes[next] == 0x2E { names.append(String(decoding: name, as: UTF8.self)) }
                index = max(end, index + 1)
            } else {
                index += 1
            }
        }
        return names
    }

    /// Whether `text` has ` AS ` outside parentheses and quotes (`CREATE TABLE x AS SELECT …`).
    static func hasTopLevelAs(_ text: String) -> Bool {
        var depth = 0
        var quote: Character?
        var previous: Character = " "
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "(" {
                depth += 1
            } else if character == ")" {
                depth -= 1
            } else if depth == 0, previous == " ", text[index...].uppercased().hasPrefix("AS ") || text[index...].uppercased() == "AS" {
                return true
            }
            previous = character
            index = text.index(after: index)
        }
        return false
    }

    static func textCallsServerFiles(_ text: String) -> Bool {
        let lower = text.lowercased()
        return ["pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export", "pg_file_write", "dblink", "pg_reload_conf",
                "pg_terminate_backend", "pg_cancel_backend", "pg_execute_server_program", "pg_write_server_files", "pg_read_server_files", " program "]
            .contains { lower.contains($0) }
    }
}

/// Drops the byte ranges a ``DumpFilter`` found (pg_dump's `\restrict` lines) from the same stream read again:
/// the verified copy of a dump, applied without lexing it a second time.
public struct DumpCuts: Sendable {
    private var ranges: [Range<Int64>]
    private var offset: Int64 = 0

    public init(_ ranges: [Range<Int64>]) {
        self.ranges = ranges.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// The chunk without the bytes that fall in a cut range.
    public mutating func apply(_ input: ByteBuffer) -> ByteBuffer {
        let start = offset
        let end = start + Int64(input.readableBytes)
        offset = end
        while let first = ranges.first, first.upperBound <= start { ranges.removeFirst() }
        guard let first = ranges.first, first.lowerBound < end else { return input }
        var output = ByteBuffer()
        output.reserveCapacity(input.readableBytes)
        var position = start
        for range in ranges {
            if range.lowerBound >= end { break }
            if range.lowerBound > position {
                output.writeImmutableBuffer(input.getSlice(at: input.readerIndex + Int(position - start), length: Int(range.lowerBound - position))!)
            }
            position = max(position, min(range.upperBound, end))
        }
        if position < end {
            output.writeImmutableBuffer(input.getSlice(at: input.readerIndex + Int(position - start), length: Int(end - position))!)
        }
        return output
    }
}
