import Foundation
import NIOCore

/// A private directory (0700) holding the stored bytes of the objects one restore applies, each in a 0600
/// file, so that what psql reads is exactly what was verified: the object is read whole from the bucket and
/// checked (size, SHA-256, the dump filter) before a byte of it is applied, and the second read comes from
/// here, not from a store that may answer differently the second time.
///
/// The directory is `tenant-backup-spool-<pid>-<random>` under the spool base (``RestoreSettings``); it is
/// removed when the restore ends, and a killed run's leftover is removed by the next one (``sweep(base:)``),
/// only when the process that made it is gone.
public final class RestoreSpool: @unchecked Sendable {
    public let directory: String
    private let lock = NSLock()
    private var files: [String] = []

    static let namePrefix = "tenant-backup-spool-"

    private init(directory: String) {
        self.directory = directory
    }

    /// Makes the private directory under `base`.
    public static func create(base: String) throws -> RestoreSpool {
        var template = Array("\(base)/\(namePrefix)\(getpid())-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            mkdtemp(buffer.baseAddress!) != nil
        }
        guard made else {
            throw SpoolError(message: "cannot create a private spool directory under \(base): \(String(cString: strerror(errno))); set restore.spool_directory to a writable place")
        }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        chmod(path, 0o700)
        return RestoreSpool(directory: path)
    }

    /// A new 0600 file in the spool, opened for writing.
    public func createFile(named name: String) throws -> (path: String, handle: FileHandle) {
        let path = "\(directory)/\(name)"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SpoolError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
        lock.withLock { files.append(path) }
        return (path, FileHandle(fileDescriptor: descriptor, closeOnDealloc: true))
    }

    /// Removes the spool and everything in it.
    public func remove() {
        lock.withLock {
            for file in files { unlink(file) }
            files = []
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Free bytes on the spool's file system.
    public static func freeBytes(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Leftover spools under `base` whose process is gone (a killed restore's).
    public static func leftovers(base: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return [] }
        return names.filter { name in
            guard name.hasPrefix(namePrefix) else { return false }
            let rest = name.dropFirst(namePrefix.count)
            guard let pid = Int32(rest.prefix { $0.isNumber }), rest.dropFirst(String(pid).count).first == "-" else { return false }
            if pid == getpid() { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }.map { "\(base)/\($0)" }.sorted()
    }

    /// Removes ``leftovers(base:)``; returns what it removed.
    @discardableResult
    public static func sweep(base: String) -> [String] {
        let found = leftovers(base: base)
        for path in found { try? FileManager.default.removeItem(atPath: path) }
        return found
    }
}

/// The spool could not be made or written.
public struct SpoolError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Reads a spooled file back in chunks.
struct SpoolReader {
    let handle: FileHandle
    static let chunkSize = 1 << 20

    init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SpoolError(message: "cannot reopen \(path)") }
        self.handle = handle
    }

    /// The next chunk, or `nil` at the end.
    func next() throws -> ByteBuffer? {
        guard let data = try handle.read(upToCount: Self.chunkSize), !data.isEmpty else { return nil }
        return ByteBuffer(bytes: data)
    }
}
