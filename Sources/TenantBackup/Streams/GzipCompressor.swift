import CZlib
import NIOCore

/// Streaming gzip compression (RFC 1952 framing) through zlib's `deflate`.
public final class GzipCompressor: StreamTransform {
    private var stream = z_stream()
    private let chunk = 64 << 10

    public init(level: Int) throws(StreamTransformError) {
        let status = tenant_backup_deflate_init_gzip(&stream, Int32(level))
        guard status == Z_OK else { throw StreamTransformError(codec: "gzip", message: "deflateInit2 returned \(status)") }
    }

    deinit { deflateEnd(&stream) }

    private func run(_ input: ByteBuffer, flush: Int32) throws(StreamTransformError) -> ByteBuffer {
        var output = ByteBuffer()
        var status = Z_OK
        var mutableInput = input
        mutableInput.withUnsafeMutableReadableBytes { raw in
            stream.next_in = raw.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = uInt(raw.count)
            repeat {
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { target in
                    stream.next_out = target.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(target.count)
                    status = deflate(&stream, flush)
                    return target.count - Int(stream.avail_out)
                }
                if status == Z_STREAM_ERROR { return }
            } while stream.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END)
            stream.next_in = nil
        }
        guard status != Z_STREAM_ERROR else { throw StreamTransformError(codec: "gzip", message: "deflate stream error") }
        return output
    }

    public func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer {
        try run(input, flush: Z_NO_FLUSH)
    }

    public func finish() throws(StreamTransformError) -> ByteBuffer {
        try run(ByteBuffer(), flush: Z_FINISH)
    }
}
