import CZstd
import NIOCore

/// Streaming zstd compression (one frame, with checksum) through libzstd's `ZSTD_compressStream2`.
public final class ZstdCompressor: StreamTransform {
    private let context: OpaquePointer
    private let outputChunk = ZSTD_CStreamOutSize()

    public init(level: Int) throws(StreamTransformError) {
        guard let context = ZSTD_createCCtx() else { throw StreamTransformError(codec: "zstd", message: "cannot allocate a context") }
        self.context = context
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)))
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1))
    }

    deinit { ZSTD_freeCCtx(context) }

    private func check(_ code: Int) throws(StreamTransformError) {
        if ZSTD_isError(code) != 0 {
            throw StreamTransformError(codec: "zstd", message: String(cString: ZSTD_getErrorName(code)))
        }
    }

    private func run(_ input: ByteBuffer, mode: ZSTD_EndDirective) throws(StreamTransformError) -> ByteBuffer {
        var output = ByteBuffer()
        var failure: StreamTransformError?
        input.withUnsafeReadableBytes { raw in
            var inBuffer = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
            while true {
                let before = output.writerIndex
                var remaining = 0
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: outputChunk) { target in
                    var outBuffer = ZSTD_outBuffer(dst: target.baseAddress, size: target.count, pos: 0)
                    remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, mode)
                    return ZSTD_isError(remaining) != 0 ? 0 : outBuffer.pos
                }
                if ZSTD_isError(remaining) != 0 {
                    failure = StreamTransformError(codec: "zstd", message: String(cString: ZSTD_getErrorName(remaining)))
                    return
                }
                let wrote = output.writerIndex - before
                if mode == ZSTD_e_end {
                    if remaining == 0 { return }
                } else if inBuffer.pos == inBuffer.size, wrote < outputChunk {
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    public func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer {
        try run(input, mode: ZSTD_e_continue)
    }

    public func finish() throws(StreamTransformError) -> ByteBuffer {
        try run(ByteBuffer(), mode: ZSTD_e_end)
    }
}
