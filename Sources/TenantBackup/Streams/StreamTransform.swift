import NIOCore

/// A streaming transformation of bytes (compression, later encryption): fed chunk by chunk, it returns
/// what it can emit so far, and the rest when finished. Memory stays bounded by the chunk size plus the
/// codec's own window.
public protocol StreamTransform {
    /// Transforms one chunk; may return an empty buffer while the codec accumulates.
    mutating func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer
    /// Flushes everything left. Call exactly once, after the last `process`.
    mutating func finish() throws(StreamTransformError) -> ByteBuffer
}

/// A codec failure, with the library's own message.
public struct StreamTransformError: Error, Equatable, CustomStringConvertible {
    public let codec: String
    public let message: String

    public var description: String { "\(codec) failed: \(message)" }
}

/// The compressions a backup can use.
public enum Compression: String, Sendable, Equatable, CaseIterable {
    case zstd
    case gzip
    case none

    /// The levels each codec takes: zstd 1–19 (20–22 need far more memory and are refused), gzip 1–9.
    public var levels: ClosedRange<Int> {
        switch self {
        case .zstd: return 1...19
        case .gzip: return 1...9
        case .none: return 0...0
        }
    }

    /// The default level of each codec.
    public var defaultLevel: Int {
        switch self {
        case .zstd: return 1  // keeps up with pg_dump; measured faster and no larger than 3 on clinic-like text
        case .gzip: return 6
        case .none: return 0
        }
    }

    /// A fresh decompressor.
    public func makeDecompressor() throws(StreamTransformError) -> any StreamTransform {
        switch self {
        case .zstd: return try ZstdDecompressor()
        case .gzip: return try GzipDecompressor()
        case .none: return PassThrough()
        }
    }

    /// A fresh compressor at `level`.
    public func makeCompressor(level: Int) throws(StreamTransformError) -> any StreamTransform {
        switch self {
        case .zstd: return try ZstdCompressor(level: level)
        case .gzip: return try GzipCompressor(level: level)
        case .none: return PassThrough()
        }
    }
}

/// Leaves bytes as they are.
public struct PassThrough: StreamTransform {
    public init() {}
    public mutating func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer { input }
    public mutating func finish() throws(StreamTransformError) -> ByteBuffer { ByteBuffer() }
}
