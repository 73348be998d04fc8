import CZlib
import NIOCore

/// Streaming gzip decompression through zlib's `inflate` (for restore and verification).
public final class GzipDecompressor: StreamTransform {
    private var stream = z_stream()
    private var ended = false
    private let chunk = 64 << 10

    public init() throws(StreamTransformError) {
        let status = tenant_backup_inflate_init_gzip(&stream)
        guard status == Z_OK else { throw StreamTransformError(codec: "gzip", message: "inflateInit2 returned \(status)") }
    }

    deinit { inflateEnd(&stream) }

    public func process(_ input: ByteBuffer) throws(StreamTransformError) -> ByteBuffer {
        var output = ByteBuffer()
        var status = Z_OK
        var mutableInput = input
        mutableInput.withUnsafeMutableReadableBytes { raw in
            stream.next_in = raw.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = uInt(raw.count)
            while !ended, stream.avail_in > 0 || status == Z_OK {
                var produced = 0
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { target in
                    stream.next_out = target.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(target.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    produced = target.count - Int(stream.avail_out)
                    return produced
                }
                if status == Z_STREAM_END { ended = true }
                if status != Z_OK { break }
                if stream.avail_in == 0, stream.avail_out > 0 { break }
            }
            stream.next_in = nil
        }
        guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
            throw StreamTransformError(codec: "gzip", message: "inflate returned \(status) (corrupt data)")
        }
        return output
    }

    public func finish() throws(StreamTransformError) -> ByteBuffer {
        guard ended else { throw StreamTransformError(codec: "gzip", message: "the data ends before the gzip stream does (truncated)") }
        return ByteBuffer()
    }
}
