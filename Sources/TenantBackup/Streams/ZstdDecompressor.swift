import CZstd
import NIOCore

/// Streaming zstd decompression through libzstd's `ZSTD_decompressStream` (for restore and verification).
public final class ZstdDecompressor: StreamTransform {
    private let context: OpaquePointer
    private let outputChunk = ZSTD_DStreamOutSize()
    private var frameComplete = true

    public init() throws(StreamTransformError) {
        guard let context = ZSTD_createDCtx() else { throw StreamTransformError(codec: "zstd", message: "cannot allocate a context") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    public func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer {
        var output = ByteBuffer()
        var failure: StreamTransformError?
        input.withUnsafeReadableBytes { raw in
            var inBuffer = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
            var outputFull = true
            while inBuffer.pos < inBuffer.size || outputFull {
                var hint = 0
                var produced = 0
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: outputChunk) { target in
                    var outBuffer = ZSTD_outBuffer(dst: target.baseAddress, size: target.count, pos: 0)
                    hint = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                    produced = ZSTD_isError(hint) != 0 ? 0 : outBuffer.pos
                    outputFull = ZSTD_isError(hint) == 0 && outBuffer.pos == outBuffer.size
                    return produced
                }
                if ZSTD_isError(hint) != 0 {
                    failure = StreamTransformError(codec: "zstd", message: String(cString: ZSTD_getErrorName(hint)))
                    return
                }
                frameComplete = hint == 0
                if produced == 0, inBuffer.pos == inBuffer.size { break }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Fails when the input ended in the middle of a frame (a truncated object).
    public func finish() throws(StreamTransformError) -> ByteBuffer {
        guard frameComplete else { throw StreamTransformError(codec: "zstd", message: "the data ends in the middle of a frame (truncated)") }
        return ByteBuffer()
    }
}
