/// Chooses the part size of a multipart upload before the dump starts: fixed for the whole
/// upload, large enough that the estimated object fits in S3's 10,000 parts with room to spare.
public struct PartSizePlanner: Sendable, Equatable {
    public static let mebibyte = 1 << 20
    /// S3's limits (``S3Client/minimumPartSize`` and the rest), by the names the planner's callers use.
    public static let minimumPartSize = S3Client.minimumPartSize
    public static let maximumPartSize = S3Client.maximumPartSize
    public static let maximumParts = S3Client.maximumParts

    /// The part size when the estimate does not need more (default 8 MiB).
    public var defaultPartSize: Int
    /// A configured size that overrides the estimate; still checked against S3's limits.
    public var configuredPartSize: Int?
    /// How much larger than the schema's on-disk size the dump may be (uncompressed text can exceed the
    /// tables' size; `none` compression stores it as it is).
    public var safetyFactor: Int

    public init(defaultPartSize: Int = 8 << 20, configuredPartSize: Int? = nil, safetyFactor: Int = 4) {
        self.defaultPartSize = defaultPartSize
        self.configuredPartSize = configuredPartSize
        self.safetyFactor = safetyFactor
    }

    /// Why no part size can work.
    public enum PlanError: Error, Equatable, CustomStringConvertible {
        case partSizeOutOfRange(Int)
        case tooLarge(estimatedBytes: Int64, partSize: Int)

        public var description: String {
            switch self {
            case .partSizeOutOfRange(let size):
                return "backup.part_size \(size) bytes is outside S3's limits (5 MiB to 5 GiB)"
            case .tooLarge(let estimate, let partSize):
                return "the schema's estimated dump (\(estimate) bytes, with margin) would need more than 10,000 parts of \(partSize) bytes; "
                    + "raise backup.part_size (at most 5 GiB)"
            }
        }
    }

    /// The part size for a schema whose tables take `estimatedBytes` on disk.
    public func partSize(estimatedBytes: Int64) throws(PlanError) -> Int {
        if let configured = configuredPartSize {
            guard configured >= Self.minimumPartSize, configured <= Self.maximumPartSize else { throw .partSizeOutOfRange(configured) }
            let (product, overflow) = estimatedBytes.multipliedReportingOverflow(by: Int64(safetyFactor))
            if !overflow, product > Int64(configured) * Int64(Self.maximumParts) {
                throw .tooLarge(estimatedBytes: product, partSize: configured)
            }
            return configured
        }
        let (withMargin, overflow) = estimatedBytes.multipliedReportingOverflow(by: Int64(safetyFactor))
        guard !overflow else { throw .tooLarge(estimatedBytes: .max, partSize: Self.maximumPartSize) }
        let needed = (withMargin + Int64(Self.maximumParts) - 1) / Int64(Self.maximumParts)
        // Round up to a whole MiB, never below the default.
        let rounded = (needed + Int64(Self.mebibyte) - 1) / Int64(Self.mebibyte) * Int64(Self.mebibyte)
        let size = max(Int64(defaultPartSize), rounded)
        guard size <= Int64(Self.maximumPartSize) else { throw .tooLarge(estimatedBytes: withMargin, partSize: Self.maximumPartSize) }
        return Int(size)
    }
}
