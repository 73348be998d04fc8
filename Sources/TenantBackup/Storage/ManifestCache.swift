import Foundation
import NIOFoundationCompat
import Synchronization

/// Tenant manifests as retention reads them, kept by key and by the ETag the listing gives them, with the
/// verdict on their signature under one set of trusted keys. A manifest is written once and never changes:
/// each is read from the bucket once per context (a process, or a daemon until its next reload) instead of
/// twice per cycle (the tenant's retention, then the shared dumps'): at 1,000 clinics keeping 23 backups
/// each, ~46,000 GETs a cycle became ~1,000, the new manifests.
///
/// Nothing is believed for longer than the bucket says it stands: an entry is used only while the listing
/// gives the manifest the ETag it had when read, so a manifest replaced (by a bucket writer, or anyone) is
/// read again and judged again. A store that lies about the ETag of a replaced manifest gets the verdict
/// on the manifest it had: one our key signed, for the same key and size, which keeps more, never less.
/// Only what retention needs is kept (a few hundred bytes a manifest); entries whose manifest is gone from
/// the bucket are dropped at each listing that shows what is there (a tenant's retention, the shared
/// dumps', the freshness refresh), and past ``maximumEntries`` the cache starts again empty.
public final class ManifestCache: Sendable {
    /// What a manifest says, as retention uses it.
    public struct Entry: Sendable, Equatable {
        public let key: String
        public let bytes: Int64
        public let sharedBackups: [String]
        public let verdict: SignatureVerdict

        public init(_ manifest: BackupManifest, verdict: SignatureVerdict) {
            key = manifest.key
            bytes = manifest.bytes
            sharedBackups = manifest.sharedBackups
            self.verdict = verdict
        }

        /// Whether the manifest names this very key and size (``BackupManifest/describes(key:bytes:)``).
        public func describes(key: String, bytes: Int64) -> Bool {
            self.key == key && self.bytes == bytes
        }
    }

    /// Why a manifest could not be read as one.
    public enum ReadError: Error, CustomStringConvertible {
        case storage(S3Error)
        case notAManifest(String)

        public var description: String {
            switch self {
            case .storage(let error): "\(error)"
            case .notAManifest(let reason): "not a manifest: \(reason)"
            }
        }

        /// The store's failure to answer for a manifest its listing shows: an error (a 404 included: the
        /// listing said it is there), or a body of another length than listed. A decision that deletes must
        /// not go on without it: read as "no manifest", it would let an older backup take the place of the
        /// newest good one.
        public var unanswered: S3Error? {
            guard case .storage(let error) = self else { return nil }
            return error
        }
    }

    private struct Stored {
        let eTag: String
        let trust: [String]
        let entry: Entry
    }

    private let entries = Mutex<[String: Stored]>([:])
    private let reads = Atomic<Int>(0)
    /// More entries than this (a bucket whose backups are never pruned) and the cache is emptied: about 60 MB
    /// at most, and a few bytes a manifest read again after.
    public let maximumEntries: Int

    public init(maximumEntries: Int = 200_000) {
        self.maximumEntries = maximumEntries
    }

    /// How many manifests are kept.
    public var count: Int { entries.withLock { $0.count } }

    /// Manifests read from the store so far (not answered from the cache).
    public var storeReads: Int { reads.load(ordering: .relaxed) }

    /// The manifest at `manifestKey`, from the cache when the listing gives it the ETag it had when read under
    /// the same trusted keys; otherwise read, judged and kept. Judged with no keys when `trust` is `nil`.
    /// `size`: the length the listing gives it; a body of another length is the store's failure, not a manifest.
    public func read(_ manifestKey: String, eTag: String?, size: Int64? = nil, from store: any ObjectStore, trust: ManifestTrust?) async throws(ReadError) -> Entry {
        let trustIDs = trust?.keys.map(\.id) ?? []
        if let eTag, !eTag.isEmpty, let stored = entries.withLock({ $0[manifestKey] }), stored.eTag == eTag, stored.trust == trustIDs {
            return stored.entry
        }
        reads.add(1, ordering: .relaxed)
        let data: Data
        do {
            data = Data(buffer: try await store.get(key: manifestKey, limit: 4 << 20))
        } catch {
            throw .storage(error)
        }
        if let size, Int64(data.count) != size {
            throw .storage(S3Error(
                operation: "GetObject", bucket: "", key: manifestKey,
                cause: .invalidResponse("the store answered \(data.count) bytes for a manifest its listing gives \(size)")))
        }
        let manifest: BackupManifest
        do {
            manifest = try BackupManifest.decode(data)
        } catch {
            throw .notAManifest("\(error)")
        }
        let entry = Entry(manifest, verdict: trust?.verdict(for: manifest) ?? .unsigned)
        // A verdict against the trusted keys is kept only when it is trusted: one forged answer (a lying store,
        // a manifest replaced and put back) must not stand for the manifest until the next reload.
        let keepsVerdict = entry.verdict.isTrusted || (trust?.keys.isEmpty ?? true)
        if let eTag, !eTag.isEmpty, keepsVerdict {
            let maximum = maximumEntries
            entries.withLock { entries in
                if entries.count >= maximum, entries[manifestKey] == nil { entries.removeAll() }
                entries[manifestKey] = Stored(eTag: eTag, trust: trustIDs, entry: entry)
            }
        }
        return entry
    }

    /// Keeps the manifest this process has just written (the store confirmed the write with `eTag`): it is
    /// known, judged now, and read back from nobody. A lying answer or a bucket writer's copy replacing it
    /// in the meantime cannot make the cycle's own backup unvouched in its own retention; a listing that gives
    /// the manifest another ETag (it was replaced) reads it again.
    public func remember(_ manifestKey: String, eTag: String, manifest: BackupManifest, trust: ManifestTrust?) {
        guard !eTag.isEmpty else { return }
        let trustIDs = trust?.keys.map(\.id) ?? []
        let entry = Entry(manifest, verdict: trust?.verdict(for: manifest) ?? .unsigned)
        entries.withLock { $0[manifestKey] = Stored(eTag: eTag, trust: trustIDs, entry: entry) }
    }

    /// Drops the entries of manifests under `folder` no longer in the bucket (`present`: every manifest key a
    /// listing of `folder` showed).
    public func keepOnly(_ present: Set<String>, under folder: String) {
        entries.withLock { entries in
            for key in entries.keys where key.hasPrefix(folder) && !present.contains(key) { entries[key] = nil }
        }
    }
}
