import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat

extension BackupAccess {
    /// Where a download goes.
    public enum DownloadDestination: Sendable {
        /// A file: written beside it under a temporary name and renamed only once the whole object verified
        /// (and its audit record is stored), so a failed or refused download leaves no file. An existing file
        /// is replaced only with `overwrite`.
        case file(path: String, overwrite: Bool)
        /// A stream (standard output, an HTTP body): the audit record is stored before the first byte goes
        /// out, and a mismatch found at the end is an error the receiver must heed (the bytes already left).
        case stream(@Sendable (ByteBuffer) async throws -> Void)
    }

    /// What a download delivered.
    public struct Download: Sendable, Equatable {
        public let key: String
        /// Bytes read from the bucket (the stored object).
        public let storedBytes: Int64
        /// Bytes written (after decompression, with `decompress`).
        public let writtenBytes: Int64
        /// Hex SHA-256 of the stored bytes.
        public let sha256: String
        /// Whether a manifest vouched for the bytes; `false` for a backup without one (nothing to check against).
        public let verified: Bool
        /// Whether a trusted key signed that manifest. An unsigned one (a bucket from before signing, or a
        /// bucket writer's) checks only that the bytes are the ones it describes, not whose they are.
        public let signed: Bool
        /// The file written, for a file destination.
        public let path: String?
    }

    /// The manifest that vouches for `backup`, or `nil` when it has none. A manifest that names another key or
    /// size fails verification before any byte is read.
    func manifest(of backup: BackupCatalog.ListedBackup, tenant: String, action: AuditRecord.Action) async throws(AccessError) -> BackupManifest? {
        guard backup.hasManifest else { return nil }
        let key = backup.key.key
        do {
            let data = try await client(tenant).get(key: backup.key.manifestKey, limit: 4 << 20)
            guard let manifest = try? BackupManifest.decode(Data(buffer: data)) else {
                throw AccessError(tenant: tenant, .verificationFailed(key: key, problem: "its manifest cannot be read as one"))
            }
            guard manifest.describes(key: key, bytes: backup.size) else {
                throw AccessError(
                    tenant: tenant,
                    .verificationFailed(key: key, problem: "its manifest names \(manifest.key) of \(manifest.bytes) bytes; the object has \(backup.size)"))
            }
            return manifest
        } catch let error as AccessError {
            await auditBestEffort(action, tenant: tenant, key: key, outcome: .failed, detail: error.message)
            throw error
        } catch {
            throw AccessError(tenant: tenant, .storage(error as? S3Error ?? S3Error(operation: "GetObject", bucket: "", key: key, cause: .transport("\(error)"))))
        }
    }

    /// The stages that turn a stored object back into its dump, built from the object's format (the one read
    /// path of download, restore, adopt, verify and the API), or why there are none.
    static func readStages(for key: BackupKey, tenant: String) throws(AccessError) -> StageChain {
        do {
            return StageChain(try key.format.makeReadStages())
        } catch {
            throw AccessError(tenant: tenant, .codec("\(key.key) \(error.problem)"))
        }
    }

    /// Streams the backup to `destination`, checking its size and SHA-256 against the manifest as it streams
    /// (bounded memory, whatever the size). With `decompress`, writes the plain dump. `progress` hears the
    /// stored bytes read so far and the total.
    public func download(
        tenant: String, _ reference: BackupReference, to destination: DownloadDestination, decompress: Bool = false,
        progress: (@Sendable (Int64, Int64) -> Void)? = nil
    ) async throws(AccessError) -> Download {
        let backup = try await locate(reference, tenant: tenant, for: .download)
        try await refuseMarked(backup, tenant: tenant, action: .download)
        let manifest = try await manifest(of: backup, tenant: tenant, action: .download)
        return try await deliver(backup, manifest: manifest, tenant: tenant, to: destination, decompress: decompress, progress: progress)
    }

    /// A download whose size, name and checksum are known before its first byte: what an HTTP answer needs
    /// for its headers. Refusals (another tenant's key, no such backup, one not vouched for) and the audit
    /// record happen here, before anything is sent.
    public struct PreparedDownload: Sendable {
        public let key: String
        public let fileName: String
        /// What ``stream(_:)`` sends: the plain dump's size, or the stored object's.
        public let size: Int64
        /// The manifest's SHA-256 of the stored bytes.
        public let sha256: String
        /// Whether the plain dump is sent (decoded), not the stored bytes.
        public let plain: Bool
        let access: BackupAccess
        let tenant: String
        let backup: BackupCatalog.ListedBackup
        let manifest: BackupManifest

        /// Streams the backup, checking the stored bytes on the way. The last piece is held back until the
        /// whole object matched its manifest (and the bytes sent are exactly ``size``): a mismatch throws
        /// before it, so the receiver never holds what looks like a complete backup.
        public func stream(_ write: (ByteBuffer) async throws -> Void) async throws(AccessError) {
            let (tenant, key, size) = (self.tenant, self.key, self.size)
            var held: ByteBuffer?
            var sent: Int64 = 0
            func send(_ buffer: ByteBuffer) async throws {
                guard buffer.readableBytes > 0 else { return }
                if let previous = held {
                    sent += Int64(previous.readableBytes)
                    guard sent <= size else { throw AccessError(tenant: tenant, .verificationFailed(key: key, problem: "it decodes to more than its manifest's \(size) bytes")) }
                    try await write(previous)
                }
                held = buffer
            }
            let read: (bytes: Int64, sha256: String)
            do {
                var decompressor = plain ? try BackupAccess.readStages(for: backup.key, tenant: tenant) : nil
                read = try await access.streamObject(key, tenant: tenant) { chunk in try await send(try decompressor?.process(chunk) ?? chunk) }
                if let tail = try decompressor?.finish() { try await send(tail) }
            } catch {
                let failure: AccessError
                switch error {
                case let error as AccessError: failure = error
                case let error as S3Error: failure = AccessError(tenant: tenant, .storage(error))
                case let error as StreamTransformError: failure = AccessError(tenant: tenant, .codec("\(key): \(error)"))
                default: failure = AccessError(tenant: tenant, .output("the receiver stopped taking the download of \(key): \(describe(error))"))
                }
                await access.auditBestEffort(.download, tenant: tenant, key: key, outcome: .failed, detail: failure.message)
                throw failure
            }
            var problem = BackupAccess.mismatch(bytes: read.bytes, sha256: read.sha256, expected: manifest, listedSize: backup.size)
            let total = sent + Int64(held?.readableBytes ?? 0)
            if problem == nil, total != size { problem = "it is \(total) bytes where its manifest says \(size)" }
            if let problem {
                let failure = AccessError(tenant: tenant, .verificationFailed(key: key, problem: problem + "; the end of the body was withheld"))
                await access.auditBestEffort(.download, tenant: tenant, key: key, outcome: .failed, detail: failure.message)
                throw failure
            }
            if let held {
                do {
                    try await write(held)
                } catch {
                    let failure = AccessError(tenant: tenant, .output("the receiver stopped taking the download of \(key): \(describe(error))"))
                    await access.auditBestEffort(.download, tenant: tenant, key: key, outcome: .failed, detail: failure.message)
                    throw failure
                }
            }
        }
    }

    /// For the API: only a backup a trusted signature vouches for and no mark condemns
    /// (``vouchedForServing(_:tenant:action:)``), audited before anything is sent (an unwritable trail is a
    /// refusal, not a cut body). `format`: the plain dump, decoded on the fly (what the old system served), or
    /// the stored bytes.
    public func prepareDownload(tenant: String, _ reference: BackupReference, format: DownloadFormat = .plain) async throws(AccessError) -> PreparedDownload {
        let backup = try await locate(reference, tenant: tenant, for: .download)
        let manifest = try await vouchedForServing(backup, tenant: tenant, action: .download)
        let plain = format == .plain && backup.key.format.isReadable && backup.key.format != backup.key.format.decoded
        let fileName = plain ? backup.key.decodedFileName : backup.key.fileName
        try await audit(.download, tenant: tenant, key: backup.key.key, detail: plain ? "served as plain SQL" : "served as stored")
        return PreparedDownload(
            key: backup.key.key, fileName: fileName, size: plain ? manifest.dumpBytes : backup.size, sha256: manifest.sha256, plain: plain, access: self,
            tenant: tenant, backup: backup, manifest: manifest)
    }

    /// What the API sends of a backup.
    public enum DownloadFormat: String, Sendable, Equatable {
        /// The plain SQL dump, decoded as it is read (verified against the stored bytes' SHA-256).
        case plain
        /// The object's bytes as stored (compressed).
        case stored
    }

    /// The second half of a download: the backup is located and its manifest read.
    func deliver(
        _ backup: BackupCatalog.ListedBackup, manifest: BackupManifest?, tenant: String, to destination: DownloadDestination, decompress: Bool,
        progress: (@Sendable (Int64, Int64) -> Void)?
    ) async throws(AccessError) -> Download {
        let key = backup.key.key
        var decompressor = decompress ? try Self.readStages(for: backup.key, tenant: tenant) : nil
        let output: DownloadOutput
        switch destination {
        case .file(let path, let overwrite):
            output = try DownloadOutput.file(beside: path, overwrite: overwrite, tenant: tenant)
            // Recorded before the first byte of the object is asked for (the file appears only once verified,
            // with a record of its own): an unwritable trail means no GET at all.
            do throws(AccessError) {
                try await audit(.download, tenant: tenant, key: key, outcome: .started, detail: "to a file, kept only once verified")
            } catch {
                output.discard()
                throw error
            }
        case .stream(let write):
            // The bytes leave as they arrive: the record must be stored first.
            try await audit(.download, tenant: tenant, key: key, detail: manifest == nil ? "streamed; no manifest to verify against" : "streamed")
            output = .stream(write)
        }
        var written: Int64 = 0
        let stored: Int64
        let digest: String
        do {
            var sofar: Int64 = 0
            (stored, digest) = try await streamObject(key, tenant: tenant) { chunk in
                sofar += Int64(chunk.readableBytes)
                let out = try decompressor?.process(chunk) ?? chunk
                written += Int64(out.readableBytes)
                try await output.write(out)
                progress?(sofar, backup.size)
            }
            if let tail = try decompressor?.finish() {
                written += Int64(tail.readableBytes)
                try await output.write(tail)
            }
        } catch {
            output.discard()
            let failure: AccessError
            switch error {
            case let error as AccessError: failure = error
            case let error as S3Error: failure = AccessError(tenant: tenant, .storage(error))
            case let error as StreamTransformError: failure = AccessError(tenant: tenant, .codec("\(key): \(error)"))
            case is CancellationError: failure = AccessError(tenant: tenant, .output("stopped; the download of \(key) was not completed and no file was written"))
            default: failure = AccessError(tenant: tenant, .output("cannot write the download of \(key): \(describe(error))"))
            }
            await auditBestEffort(.download, tenant: tenant, key: key, outcome: .failed, detail: failure.message)
            throw failure
        }
        if var problem = Self.mismatch(bytes: stored, sha256: digest, expected: manifest, listedSize: backup.size) {
            output.discard()
            if case .file = destination {
                problem += "; no file was written"
            } else {
                problem += "; the bytes already written out are not this backup: discard them"
            }
            let failure = AccessError(tenant: tenant, .verificationFailed(key: key, problem: problem))
            await auditBestEffort(.download, tenant: tenant, key: key, outcome: .failed, detail: failure.message)
            throw failure
        }
        var path: String?
        if case .file(let target, _) = destination {
            // Verified: record the access, then let the file appear.
            do throws(AccessError) {
                try await audit(.download, tenant: tenant, key: key, detail: manifest == nil ? "no manifest to verify against" : "verified")
            } catch {
                output.discard()
                throw error
            }
            try output.commit(to: target, tenant: tenant)
            path = target
        }
        let signed = manifest.map { context.manifestTrust().verdict(for: $0).isTrusted } ?? false
        return Download(key: key, storedBytes: stored, writtenBytes: written, sha256: digest, verified: manifest != nil, signed: signed, path: path)
    }
}

/// Where the bytes of a download go while it runs.
enum DownloadOutput: Sendable {
    /// A temporary file beside the target, renamed over it once verified.
    case file(temporary: String, handle: FileHandle)
    case stream(@Sendable (ByteBuffer) async throws -> Void)

    static func file(beside path: String, overwrite: Bool, tenant: String) throws(AccessError) -> DownloadOutput {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        var info = stat()
        if lstat(path, &info) == 0 {
            // Only a regular file is ever replaced: renaming over a device node, a fifo, a socket or a symbolic
            // link would put patient data where something else lived (`-o /dev/null --force` as root).
            switch info.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw AccessError(tenant: tenant, .output("\(path) is a directory; give a file name"))
            case S_IFLNK: throw AccessError(tenant: tenant, .output("\(path) is a symbolic link; give the path of a regular file (or - for stdout)"))
            default:
                throw AccessError(
                    tenant: tenant,
                    .output("\(path) is not a regular file (a device, fifo or socket): it is never replaced, even with --force; use -o - to write to stdout"))
            }
            if !overwrite {
                throw AccessError(tenant: tenant, .output("\(path) exists; remove it or choose another name"))
            }
        }
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw AccessError(tenant: tenant, .output("cannot write \(path): the directory \(directory) does not exist"))
        }
        // A killed download's partial file (patient data) is removed by the next download into its directory.
        sweepPartials(in: directory)
        // A short name of its own (any target name fits), in the target's directory so the rename is atomic;
        // the process id in it tells a live download's file from a killed one's.
        let temporary = "\(directory)/.tenant-backup-\(getpid())-\(AuditRecord.newId()).partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: temporary)
        else {
            throw AccessError(tenant: tenant, .output("cannot write in \(directory) (permissions?)"))
        }
        return .file(temporary: temporary, handle: handle)
    }

    /// Removes `.tenant-backup-<pid>-<id>.partial` files of processes that are gone (and the older
    /// `.tenant-backup-<id>.partial` names, once a day old).
    static func sweepPartials(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".tenant-backup-") && name.hasSuffix(".partial") {
            let middle = name.dropFirst(".tenant-backup-".count).dropLast(".partial".count)
            let parts = middle.split(separator: "-")
            let path = "\(directory)/\(name)"
            if parts.count == 2, let pid = Int32(parts[0]) {
                if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH { unlink(path) }
            } else if let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                      Date().timeIntervalSince(modified) > 86400
            {
                unlink(path)
            }
        }
    }

    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        switch self {
        case .file(_, let handle): try handle.write(contentsOf: buffer.readableBytesView)
        case .stream(let write): try await write(buffer)
        }
    }

    /// Removes the temporary file; nothing of a failed download stays on disk.
    func discard() {
        if case .file(let temporary, let handle) = self {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
        }
    }

    /// Flushes the temporary file to disk and renames it to `path`.
    func commit(to path: String, tenant: String) throws(AccessError) {
        guard case .file(let temporary, let handle) = self else { return }
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            discard()
            throw AccessError(tenant: tenant, .output("cannot write \(path): \(describe(error))"))
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            discard()
            throw AccessError(tenant: tenant, .output("cannot rename the download to \(path): \(reason)"))
        }
    }
}

/// An I/O error in plain words: Foundation's errors carry the POSIX cause (EPIPE, ENOSPC...) inside.
func describe(_ error: any Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
    return "\(error)"
}
