import Foundation

/// The JSON of the backup API tenant-backup replaces, as `Codable` types: the HTTP API answers with them and
/// the CLI's `--json` prints the same ones, so the two never drift. Field names and types are the old system's;
/// a `null` is written as `null` (the old system sent it), never left out.
public enum OldAPI {
    /// `GET /api/backups/cloud/list/`, `tenant-backup list --tenant X --json`.
    public struct ListAnswer: Codable, Sendable, Equatable {
        public var count: Int
        public var schema: String
        public var backups: [Backup]

        public init(count: Int, schema: String, backups: [Backup]) {
            self.count = count
            self.schema = schema
            self.backups = backups
        }
    }

    /// One backup of a list.
    public struct Backup: Codable, Sendable, Equatable {
        public var filename: String
        public var s3Key: String
        public var size: Int64
        /// `2025-10-20T16:20:00.000Z`, or `null` when S3 did not say.
        public var lastModified: String?
        /// `STANDARD` when S3 does not say.
        public var storageClass: String
        /// The object's plain (unsigned) URL.
        public var url: String
        /// Added: `verified` (the API serves it), `unverified`, or (operators only) `deleted`.
        public var state: String

        public init(filename: String, s3Key: String, size: Int64, lastModified: String?, storageClass: String, url: String, state: String) {
            self.filename = filename
            self.s3Key = s3Key
            self.size = size
            self.lastModified = lastModified
            self.storageClass = storageClass
            self.url = url
            self.state = state
        }

        enum CodingKeys: String, CodingKey {
            case filename, size, url, state
            case s3Key = "s3_key"
            case lastModified = "last_modified"
            case storageClass = "storage_class"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(filename, forKey: .filename)
            try container.encode(s3Key, forKey: .s3Key)
            try container.encode(size, forKey: .size)
            try container.encode(lastModified, forKey: .lastModified)
            try container.encode(storageClass, forKey: .storageClass)
            try container.encode(url, forKey: .url)
            try container.encode(state, forKey: .state)
        }
    }

    /// `POST /api/backups/cloud/get-url/`, `tenant-backup presign --json`.
    public struct PresignAnswer: Codable, Sendable, Equatable {
        public var downloadURL: String
        public var s3Key: String
        public var expiresInSeconds: Int
        public var filename: String

        public init(downloadURL: String, s3Key: String, expiresInSeconds: Int, filename: String) {
            self.downloadURL = downloadURL
            self.s3Key = s3Key
            self.expiresInSeconds = expiresInSeconds
            self.filename = filename
        }

        enum CodingKeys: String, CodingKey {
            case filename
            case downloadURL = "download_url"
            case s3Key = "s3_key"
            case expiresInSeconds = "expires_in_seconds"
        }
    }

    /// `POST /api/backups/create/`.
    public struct CreateAnswer: Codable, Sendable, Equatable {
        public struct BackupInfo: Codable, Sendable, Equatable {
            public var filename: String
            public var s3Key: String
            public var size: Int64
            public var bucket: String
            public var url: String

            public init(filename: String, s3Key: String, size: Int64, bucket: String, url: String) {
                self.filename = filename
                self.s3Key = s3Key
                self.size = size
                self.bucket = bucket
                self.url = url
            }

            enum CodingKeys: String, CodingKey {
                case filename, size, bucket, url
                case s3Key = "s3_key"
            }
        }

        public var message: String
        public var backupInfo: BackupInfo

        public init(message: String, backupInfo: BackupInfo) {
            self.message = message
            self.backupInfo = backupInfo
        }

        enum CodingKeys: String, CodingKey {
            case message
            case backupInfo = "backup_info"
        }
    }

    /// `DELETE /api/backups/cloud/delete/`: with the added `purge_after` (the delete is soft).
    public struct DeleteAnswer: Codable, Sendable, Equatable {
        public var message: String
        public var s3Key: String
        public var purgeAfter: String

        public init(message: String, s3Key: String, purgeAfter: String) {
            self.message = message
            self.s3Key = s3Key
            self.purgeAfter = purgeAfter
        }

        enum CodingKeys: String, CodingKey {
            case message
            case s3Key = "s3_key"
            case purgeAfter = "purge_after"
        }
    }

    /// `GET /api/auditlog/?page=N`: one page of the clinic's audit records, newest first (DRF's pagination).
    public struct AuditLogAnswer: Codable, Sendable, Equatable {
        public struct Entry: Codable, Sendable, Equatable {
            public var id: String
            public var time: String
            public var action: String
            public var key: String?
            public var outcome: String
            public var actor: String
            public var detail: String?

            public init(_ record: AuditRecord) {
                id = record.id
                time = AuditRecord.iso8601(record.time)
                action = record.action.rawValue
                key = record.key
                outcome = record.outcome.rawValue
                actor = record.actor
                detail = record.detail
            }

            enum CodingKeys: String, CodingKey {
                case id, time, action, key, outcome, actor, detail
            }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encode(time, forKey: .time)
                try container.encode(action, forKey: .action)
                try container.encode(key, forKey: .key)
                try container.encode(outcome, forKey: .outcome)
                try container.encode(actor, forKey: .actor)
                try container.encode(detail, forKey: .detail)
            }
        }

        public var count: Int
        public var page: Int
        public var pageSize: Int
        public var next: Int?
        public var previous: Int?
        public var results: [Entry]

        public init(count: Int, page: Int, pageSize: Int, next: Int?, previous: Int?, results: [Entry]) {
            self.count = count
            self.page = page
            self.pageSize = pageSize
            self.next = next
            self.previous = previous
            self.results = results
        }

        enum CodingKeys: String, CodingKey {
            case count, page, next, previous, results
            case pageSize = "page_size"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(count, forKey: .count)
            try container.encode(page, forKey: .page)
            try container.encode(pageSize, forKey: .pageSize)
            try container.encode(next, forKey: .next)
            try container.encode(previous, forKey: .previous)
            try container.encode(results, forKey: .results)
        }
    }

    /// Our own errors: `{"error": "..."}`.
    public struct ErrorAnswer: Codable, Sendable, Equatable {
        public var error: String
        public init(error: String) { self.error = error }
    }

    /// Django REST framework's authentication, permission and throttling errors: `{"detail": "..."}`.
    public struct DetailAnswer: Codable, Sendable, Equatable {
        public var detail: String
        public init(detail: String) { self.detail = detail }
    }

    /// `GET /healthz`.
    public struct HealthAnswer: Codable, Sendable, Equatable {
        public var status: String
        public init(status: String) { self.status = status }
    }

    /// JSON with sorted keys and unescaped slashes (`pretty` for the command line).
    public static func encoded(_ value: some Encodable, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}
