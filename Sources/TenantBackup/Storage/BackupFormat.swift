import NIOCore

/// What a backup object is: the dump's format, its compression and its encryption. The only place a backup
/// object's suffix (`.sql`, `.dump`, then `.zst` or `.gz`, then `.age`) is spelled or parsed, recorded in the
/// manifest, and the only builder of the stages that write an object and of their inverse that reads one
/// back: every reader (download, restore, adopt, verify, the API) takes its stages from here.
public struct BackupFormat: Sendable, Hashable, CustomStringConvertible {
    /// The encryptions an object can carry. `age` is recognised (the object is never read as plain) and
    /// cannot be written yet.
    public enum Encryption: String, Sendable, Hashable, CaseIterable {
        case none
        case age
    }

    public var dump: PgDumpArguments.Format
    public var compression: Compression
    public var encryption: Encryption

    public init(dump: PgDumpArguments.Format, compression: Compression, encryption: Encryption = .none) {
        self.dump = dump
        self.compression = compression
        self.encryption = encryption
    }

    /// What follows the key's timestamp: `.sql.zst`, `.dump`, `.sql.gz.age`...
    public var suffix: String {
        Self.dumpSuffix(dump) + Self.compressionSuffix(compression) + (encryption == .age ? ".age" : "")
    }

    public var description: String { suffix }

    /// The format a suffix names, or `nil` when it is not exactly one of ours.
    public init?(suffix: String) {
        guard let format = Self.all.first(where: { $0.suffix == suffix }) else { return nil }
        self = format
    }

    /// Every format an object of ours may have.
    public static let all: [BackupFormat] = PgDumpArguments.Format.allCases.flatMap { dump in
        Compression.allCases.flatMap { compression in Encryption.allCases.map { BackupFormat(dump: dump, compression: compression, encryption: $0) } }
    }

    /// Every suffix a backup key may end in. Anything else in a tenant's folder (a checksum file, a
    /// `.sql.zst.bak` copy, a half-renamed download) is not a backup and is never planned or touched.
    public static let suffixes: Set<String> = Set(all.map(\.suffix))

    /// The suffixes a clinic's backup written today may have, for messages: `.sql[.zst|.gz]`.
    public static var writtenSuffixes: String {
        dumpSuffix(.plain) + "[" + [Compression.zstd, .gzip].map(compressionSuffix).joined(separator: "|") + "]"
    }

    /// The object once its stages are undone: the dump as pg_dump wrote it (`.sql`, `.dump`).
    public var decoded: BackupFormat { BackupFormat(dump: dump, compression: .none) }

    /// A file name with its format's suffix replaced by the decoded one (`x.sql.zst` → `x.sql`); a name that
    /// ends in none of ours stays as it is.
    public static func decodedFileName(_ name: String) -> String {
        guard let format = all.filter({ name.hasSuffix($0.suffix) }).max(by: { $0.suffix.count < $1.suffix.count }) else { return name }
        return String(name.dropLast(format.suffix.count)) + format.decoded.suffix
    }

    /// Whether reading the object back yields the dump: it is not encrypted.
    public var isReadable: Bool { encryption == .none }

    /// The stages from the dump to the stored object, in order (today the compressor alone; encryption goes
    /// after it).
    public func makeWriteStages(compressionLevel: Int? = nil) throws(BackupFormatError) -> [any StreamTransform] {
        guard encryption == .none else { throw BackupFormatError(format: self, problem: "writing encrypted backups is not supported yet") }
        do {
            return [try compression.makeCompressor(level: compressionLevel ?? compression.defaultLevel)]
        } catch {
            throw BackupFormatError(format: self, problem: error.description)
        }
    }

    /// The stages from the stored object back to the dump: the write stages' inverse, in reverse order.
    public func makeReadStages() throws(BackupFormatError) -> [any StreamTransform] {
        guard encryption == .none else {
            throw BackupFormatError(format: self, problem: "it is encrypted; download it as stored and decrypt it with age first")
        }
        do {
            return [try compression.makeDecompressor()]
        } catch {
            throw BackupFormatError(format: self, problem: error.description)
        }
    }

    /// The Content-Type of the stored object.
    public var contentType: String {
        guard encryption == .none else { return "application/octet-stream" }
        switch compression {
        case .zstd: return "application/zstd"
        case .gzip: return "application/gzip"
        case .none: return dump == .plain ? "application/sql" : "application/octet-stream"
        }
    }

    /// The manifest's `format`, `compression` and `encryption` fields for this format.
    public var manifestFields: (format: String, compression: String, encryption: String?) {
        (dump.rawValue, compression.rawValue, encryption == .none ? nil : encryption.rawValue)
    }

    /// The format a manifest records, or `nil` when its fields name none of ours. The manifest's `encryption`
    /// is absent for an unencrypted object, and otherwise says how it is encrypted (age, to its recipients).
    public init?(manifestFormat format: String, compression: String, encryption: String?) {
        guard let dump = PgDumpArguments.Format(rawValue: format), let compression = Compression(rawValue: compression) else { return nil }
        self.init(dump: dump, compression: compression, encryption: encryption == nil ? .none : .age)
    }

    private static func dumpSuffix(_ dump: PgDumpArguments.Format) -> String {
        switch dump {
        case .plain: return ".sql"
        case .custom: return ".dump"
        }
    }

    private static func compressionSuffix(_ compression: Compression) -> String {
        switch compression {
        case .zstd: return ".zst"
        case .gzip: return ".gz"
        case .none: return ""
        }
    }
}

/// A format's stages cannot be built: what the format is and why.
public struct BackupFormatError: Error, Equatable, CustomStringConvertible {
    public let format: BackupFormat
    public let problem: String

    public var description: String { "\(format.suffix): \(problem)" }
}

/// Runs bytes through stages in order, as one transform.
public struct StageChain: StreamTransform {
    var stages: [any StreamTransform]

    public init(_ stages: [any StreamTransform]) {
        self.stages = stages
    }

    public mutating func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer {
        var bytes = input
        for index in stages.indices { bytes = try stages[index].process(bytes) }
        return bytes
    }

    public mutating func finish() throws(StreamTransformError) -> ByteBuffer {
        // Each stage finishes after the last bytes of the stages before it have gone through it.
        var carried = ByteBuffer()
        for index in stages.indices {
            var out = carried.readableBytes > 0 ? try stages[index].process(carried) : ByteBuffer()
            var rest = try stages[index].finish()
            out.writeBuffer(&rest)
            carried = out
        }
        return carried
    }
}
