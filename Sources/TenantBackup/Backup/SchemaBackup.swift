import Foundation
import Logging
import NIOCore
import NIOFoundationCompat

/// What one schema's backup produced.
public struct BackupOutcome: Sendable, Equatable {
    public let schema: BackupSchema
    public let key: String
    /// `nil` when the manifest could not be written (the backup itself is good).
    public let manifestKey: String?
    public let storedBytes: Int64
    public let dumpBytes: Int64
    public let sha256: String
    public let duration: Duration
    public let tableRowCounts: [String: Int64]?
    /// The manifest as written: its ETag (as the store answered the write) and size, which is how a listing
    /// that shows it would give it (the cycle's retention reads it by them, once).
    public var manifestETag: String? = nil
    public var manifestBytes: Int64? = nil
    /// The manifest as written (signed when a key signed it).
    public var manifest: BackupManifest? = nil
}

/// Live numbers of a running backup, for progress lines.
public struct BackupProgress: Sendable {
    public let schema: BackupSchema
    public let dumpBytes: Int64
    public let storedBytes: Int64
    public let elapsed: Duration
}

/// Backs up one schema: `pg_dump` → row counting → compression → S3, then the manifest. The object
/// becomes visible only after pg_dump exited 0 with output; on any failure the upload is aborted.
public struct SchemaBackup: Sendable {
    public let schema: BackupSchema
    public let settings: Settings
    public let pgDump: PgDumpBinary
    public let serverVersion: String
    /// The environment pg_dump gets (`PG*` included), before systemd's variables are removed.
    public let environment: [String: String]
    public let sharedBackups: [String]
    public let logger: Logger
    /// Where to also write the stored bytes (`backup --output`), if anywhere.
    public var localCopyPath: String?
    /// The cycle's exported snapshot, when the schemas are dumped consistently.
    public var snapshot: String?
    public var progress: (@Sendable (BackupProgress) -> Void)?
    /// Signs the manifest (``SigningKey``); `nil` writes it unsigned.
    public var signer: SigningKey?
    /// The schema's size as already known, for the part size; `nil`: the database is asked.
    public var sizeEstimate: Int64?

    public init(
        schema: BackupSchema, settings: Settings, pgDump: PgDumpBinary, serverVersion: String,
        environment: [String: String], sharedBackups: [String] = [], logger: Logger
    ) {
        self.schema = schema
        self.settings = settings
        self.pgDump = pgDump
        self.serverVersion = serverVersion
        self.environment = environment
        self.sharedBackups = sharedBackups
        self.logger = logger
    }

    func failure(_ stage: BackupError.Stage, _ cause: BackupError.Cause) -> BackupError {
        BackupError(schema: schema, stage: stage, cause: cause)
    }

    /// The schema's on-disk size, for choosing the part size.
    func estimatedSize() async throws(BackupError) -> Int64 {
        let connectionString = settings.postgres.connectionString
        let environment = self.environment
        let schema = self.schema.name
        do {
            return try await Blocking.run { () throws -> Int64 in
                try PostgresConnection(connectionString: connectionString, environment: environment).estimatedSize(ofSchema: schema)
            }
        } catch {
            throw failure(.preparation, BackupError.Cause(error))
        }
    }

    /// The environment pg_dump connects with: ours, with the configured connection string's parameters
    /// as `PG*` variables (so no password ever appears in argv).
    func dumpEnvironment() throws(BackupError) -> [String: String] {
        var result = environment
        if let connectionString = settings.postgres.connectionString, !connectionString.isEmpty {
            do {
                for (name, value) in try DumpConnection.variables(for: connectionString) { result[name] = value }
            } catch {
                throw failure(.preparation, .connectionString(error.message))
            }
        }
        return result
    }

    /// Dumps the schema (with `launcher`: pg_dump itself, unless a test says otherwise) into `store`.
    public func run(startedAt: Date = Date(), store: any BackupStore, launcher: any DumpLauncher = PgDumpLauncher()) async throws(BackupError) -> BackupOutcome {
        let clock = ContinuousClock.now
        let key = BackupKey(prefix: settings.s3.prefix, schema: schema, timestamp: startedAt, format: settings.backup.backupFormat)
        var log = logger
        log[metadataKey: schema.metadataKey] = "\(schema.name)"
        log[metadataKey: "s3_key"] = "\(key.key)"

        let estimate: Int64
        if let sizeEstimate { estimate = sizeEstimate } else { estimate = try await estimatedSize() }
        let partSize: Int
        do {
            partSize = try PartSizePlanner(configuredPartSize: settings.backup.partSize).partSize(estimatedBytes: estimate)
        } catch {
            throw failure(.preparation, .partSize(error))
        }
        let process = PgDumpProcess(
            executable: pgDump.path,
            arguments: settings.backup.dumpArguments.arguments(schema: schema, snapshot: snapshot),
            environment: try dumpEnvironment(),
            noOutputTimeout: settings.backup.noOutputTimeout,
            totalTimeout: settings.backup.dumpTimeout)
        var compressor: any StreamTransform
        do {
            compressor = StageChain(try key.format.makeWriteStages(compressionLevel: settings.backup.compressionLevel))
        } catch {
            throw failure(.preparation, .format(error))
        }
        let uploader = store.upload(
            key: key.key, partSize: partSize, backup: settings.backup,
            options: S3WriteOptions(contentType: key.format.contentType, userMetadata: ["tool": "tenant-backup"]), logger: log)
        let localCopy: FileHandle?
        do {
            localCopy = try localCopyPath.map(Self.createLocalCopy)
        } catch {
            throw failure(.preparation, .localCopy("\(error)"))
        }
        var counter = settings.backup.format == .plain ? CopyRowCounter() : nil
        log.info("backup started", metadata: ["estimated_bytes": "\(estimate)", "part_size": "\(partSize)"])

        let dumped: PgDumpProcess.Outcome
        var lastProgress = ContinuousClock.now
        var dumpBytes: Int64 = 0
        do {
            dumped = try await launcher.dump(process) { chunk in
                dumpBytes += Int64(chunk.readableBytes)
                counter?.consume(chunk)
                let stored = try compressor.process(chunk)
                if stored.readableBytes > 0 {
                    try localCopy?.write(contentsOf: stored.readableBytesView)
                    try await uploader.write(stored)
                }
                if let progress, ContinuousClock.now - lastProgress > .milliseconds(500) {
                    lastProgress = .now
                    progress(BackupProgress(schema: schema, dumpBytes: dumpBytes, storedBytes: uploader.bytesWritten, elapsed: .now - clock))
                }
            }
            let tail = try compressor.finish()
            try localCopy?.write(contentsOf: tail.readableBytesView)
            try await uploader.write(tail)
        } catch {
            await uploader.abort()
            try? localCopy?.close()
            if let localCopyPath { try? FileManager.default.removeItem(atPath: localCopyPath) }
            let failed = Task.isCancelled ? failure(.dump, .stopped) : failure(.dump, BackupError.Cause(error))
            log.error("backup failed", metadata: ["error": "\(failed.message)"])
            throw failed
        }
        try? localCopy?.close()
        // pg_dump refuses to call an empty dump a success; should a launcher not, the sink does.
        guard dumped.bytes > 0, dumpBytes > 0 else {
            await uploader.abort()
            if let localCopyPath { try? FileManager.default.removeItem(atPath: localCopyPath) }
            let failed = failure(.dump, BackupError.Cause(PgDumpFailure(reason: .emptyOutput, stderr: dumped.stderr)))
            log.error("backup failed", metadata: ["error": "\(failed.message)"])
            throw failed
        }
        // A pg_dump that succeeds may still have warned (a dependency loop, an object it could not lock in time):
        // the operator should see it with the tenant's name.
        for line in dumped.stderr.split(whereSeparator: \.isNewline) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            log.warning("pg_dump succeeded with a message on stderr", metadata: ["stderr": "\(line)"])
        }

        // pg_dump succeeded with output: only now may the object become visible.
        var stored: StreamingUploader.Result
        do {
            stored = try await uploader.complete()
        } catch {
            // A stop can cut off our request to complete after S3 carried it out: then the object is whole and
            // visible, and calling it "nothing stored" would hide a good backup. Asked outside the cancelled task, so
            // the answer is real.
            let written = uploader.writtenSoFar
            let objectKey = key.key
            // Only for a stop: after a 412 the key is another writer's object.
            let whole = Task.isCancelled ? await Task { (try? await store.size(of: objectKey)) == written.bytes }.value : false
            if whole {
                log.warning("the upload was completed before the stop cut off S3's answer; the object is whole and is kept", metadata: ["error": "\(error)"])
                stored = written
                return try await finish(stored: stored, key: key, dumped: dumped, counter: counter, startedAt: clock, store: store, log: log)
            }
            if let localCopyPath { try? FileManager.default.removeItem(atPath: localCopyPath) }
            // Cancelled while completing (the stop timeout passed): whatever request was cut off is not the cause.
            let failed: BackupError
            if Task.isCancelled {
                failed = failure(.completion, .stopped)
            } else if let error = error as? S3Error, error.status == 412 {
                failed = failure(.completion, .alreadyExists(key: key.key))
            } else {
                failed = failure(.completion, BackupError.Cause(error))
            }
            log.error("backup failed", metadata: ["error": "\(failed.message)"])
            throw failed
        }
        return try await finish(stored: stored, key: key, dumped: dumped, counter: counter, startedAt: clock, store: store, log: log)
    }

    /// The object is stored: write its manifest (even while the backup is being stopped: the manifest is what
    /// verification needs), log it, and describe it.
    private func finish(
        stored: StreamingUploader.Result, key: BackupKey, dumped: PgDumpProcess.Outcome, counter: CopyRowCounter?,
        startedAt clock: ContinuousClock.Instant, store: any BackupStore, log: Logger
    ) async throws(BackupError) -> BackupOutcome {
        let finishedAt = Date()
        var manifest = BackupManifest(
            area: schema.kind, schema: schema.name, key: key.key, bytes: stored.bytes, sha256: stored.sha256,
            dumpBytes: dumped.bytes, compression: key.format.manifestFields.compression, encryption: key.format.manifestFields.encryption,
            format: key.format.manifestFields.format, pgDumpVersion: pgDump.version, serverVersion: serverVersion,
            toolVersion: TenantBackupVersion.current, startedAt: key.timestamp, finishedAt: finishedAt,
            sharedBackups: sharedBackups, tableRowCounts: counter?.rowCounts)
        manifest.serverSideEncryption = stored.serverSideEncryption
        let manifestKey: String? = key.manifestKey
        let signer = self.signer
        let written: Result<(eTag: String, bytes: Int64, manifest: BackupManifest), any Error> = await Task {
            do {
                let signed = try signer.map { try $0.sign(manifest) } ?? manifest
                let data = try signed.encoded()
                let eTag = try await store.put(key: key.manifestKey, body: ByteBuffer(data: data), contentType: "application/json")
                return .success((eTag, Int64(data.count), signed))
            } catch {
                return .failure(error)
            }
        }.value
        if case .failure(let error) = written {
            // The dump is stored and kept, but without its signed manifest nothing vouches for it: no drill, API
            // download or restore (without --trust-unsigned) takes it, and the slot check does not count it. That
            // is a failed backup, said as one, so the next cycle makes a good one.
            log.error("manifest not written; the object is kept but is not a verified backup", metadata: ["error": "\(error)"])
            throw BackupError(schema: schema, stage: .completion, cause: .manifestNotWritten(key: key.key, reason: "\(error)"))
        }
        let duration = ContinuousClock.now - clock
        log.info(
            "backup done",
            metadata: [
                "bytes": "\(stored.bytes)", "dump_bytes": "\(dumped.bytes)", "parts": "\(stored.parts)",
                "bytes_resent": "\(stored.resentBytes)", "duration_ms": "\(duration.milliseconds)", "sha256": "\(stored.sha256)",
            ])
        var outcome = BackupOutcome(
            schema: schema, key: key.key, manifestKey: manifestKey, storedBytes: stored.bytes, dumpBytes: dumped.bytes,
            sha256: stored.sha256, duration: duration, tableRowCounts: counter?.rowCounts)
        if case .success(let manifest) = written {
            (outcome.manifestETag, outcome.manifestBytes, outcome.manifest) = (manifest.eTag, manifest.bytes, manifest.manifest)
        }
        return outcome
    }

    static func createLocalCopy(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }
}
