import Foundation

/// Where requests for one bucket go, and how keys become URLs: a pure value built from the settings.
public struct S3Endpoint: Sendable, Equatable {
    public let scheme: String
    /// The host name requests are sent to (with the bucket in front for virtual-hosted style).
    public let host: String
    public let port: Int?
    public let bucket: String
    public let usesPathStyle: Bool

    public init(settings: S3Settings, bucket: String) {
        let base = settings.endpoint ?? URL(string: "https://s3.\(settings.region).amazonaws.com")!
        let scheme = (base.scheme ?? "https").lowercased()
        let baseHost = base.host ?? "s3.amazonaws.com"
        let pathStyle: Bool
        switch settings.addressingStyle {
        case .path: pathStyle = true
        case .virtualHosted: pathStyle = false
        case .automatic:
            // AWS: virtual-hosted, except dotted bucket names, which break TLS certificate matching. Any other
            // endpoint: path style, which Ceph RGW (without `rgw dns name`), MinIO and most compatible stores
            // expect, and which IP addresses and localhost need anyway.
            pathStyle = !Self.isAmazonS3(baseHost) || (scheme == "https" && bucket.contains("."))
        }
        self.scheme = scheme
        self.port = base.port
        self.bucket = bucket
        self.usesPathStyle = pathStyle
        self.host = pathStyle ? baseHost : "\(bucket).\(baseHost)"
    }

    /// `host[:port]`, the port only when it is not the scheme's default: the `Host` header S3 signs.
    public var hostHeader: String {
        guard let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) else {
            return Self.bracketed(host)
        }
        return "\(Self.bracketed(host)):\(port)"
    }

    /// The decoded path of an object (or of the bucket when `key` is `nil`).
    public func path(key: String?) -> String {
        let bucketPath = usesPathStyle ? "/\(bucket)" : ""
        guard let key else { return bucketPath.isEmpty ? "/" : bucketPath }
        return "\(bucketPath)/\(key)"
    }

    /// The URL to send: the path encoded exactly as the signer encodes it, then the query.
    public func url(path: String, query: [(name: String, value: String)]) -> String {
        var url = "\(scheme)://\(hostHeader)\(SigV4Signer.uriEncode(path, keepSlash: true))"
        if !query.isEmpty {
            url += "?" + query.map { pair in
                let name = SigV4Signer.uriEncode(pair.name, keepSlash: false)
                // Sub-resources such as `?uploads` and `?delete` go without `=`, as S3 documents them.
                return pair.value.isEmpty && !Self.keepsEmptyValue(pair.name) ? name : "\(name)=\(SigV4Signer.uriEncode(pair.value, keepSlash: false))"
            }.joined(separator: "&")
        }
        return url
    }

    private static func keepsEmptyValue(_ name: String) -> Bool {
        ["prefix", "delimiter", "continuation-token", "start-after", "key-marker", "upload-id-marker"].contains(name)
    }

    /// Whether `host` is one of Amazon S3's own endpoints (`s3.<region>.amazonaws.com`, `.amazonaws.com.cn`).
    static func isAmazonS3(_ host: String) -> Bool {
        let lowered = host.lowercased()
        return lowered.hasSuffix(".amazonaws.com") || lowered.hasSuffix(".amazonaws.com.cn")
    }

    private static func bracketed(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}
