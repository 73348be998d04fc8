import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct CompressionTests {
    static func sample(_ count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for index in 0..<count { buffer.writeString("row \(index)\tpatient \(index % 97)\tnote \(index * 7919 % 1000)\n") }
        return buffer
    }

    @Test(arguments: [Compression.zstd, .gzip, .none])
    func compressedStreamsDecompressToTheSameBytes(compression: Compression) throws {
        let input = Self.sample(50_000)
        var compressor = try compression.makeCompressor(level: compression.defaultLevel)
        var compressed = ByteBuffer()
        var slice = input
        while slice.readableBytes > 0 {
            var part = try compressor.process(slice.readSlice(length: min(65_536, slice.readableBytes))!)
            compressed.writeBuffer(&part)
        }
        var tail = try compressor.finish()
        compressed.writeBuffer(&tail)
        if compression != .none { #expect(compressed.readableBytes < input.readableBytes / 3) }
        var decompressor = try compression.makeDecompressor()
        var output = ByteBuffer()
        var compressedSlice = compressed
        while compressedSlice.readableBytes > 0 {
            var part = try decompressor.process(compressedSlice.readSlice(length: min(4096, compressedSlice.readableBytes))!)
            output.writeBuffer(&part)
        }
        _ = try decompressor.finish()
        #expect(output == input)
    }

    @Test(arguments: [Compression.zstd, .gzip])
    func aTruncatedStreamIsAnError(compression: Compression) throws {
        var compressor = try compression.makeCompressor(level: 1)
        var compressed = try compressor.process(Self.sample(10_000))
        var tail = try compressor.finish()
        compressed.writeBuffer(&tail)
        var decompressor = try compression.makeDecompressor()
        _ = try decompressor.process(compressed.getSlice(at: 0, length: compressed.readableBytes / 2)!)
        #expect(throws: StreamTransformError.self) { try decompressor.finish() }
    }

    @Test func fileSuffixesFollowFormatAndCompression() {
        #expect(BackupSettings().backupFormat.suffix == ".sql.zst")
        #expect(BackupSettings(compression: .gzip).backupFormat.suffix == ".sql.gz")
        #expect(BackupSettings(compression: .none).backupFormat.suffix == ".sql")
        #expect(BackupSettings(format: .custom).backupFormat.suffix == ".dump.zst")
    }
}
