import Crypto
import Foundation

/// AWS Signature Version 4 for S3, as a pure value: same inputs, same signature, no I/O, no clock.
///
/// Paths and query parameters are given decoded; the signer encodes them per RFC 3986 (only
/// `A-Z a-z 0-9 - _ . ~` left as they are, `/` kept in paths), which is also how the client must put them
/// on the wire, so the canonical request matches the request S3 receives.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a request whose body is not hashed.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// The SHA-256 of zero bytes.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// The longest validity S3 accepts for a presigned URL: 7 days.
    public static let maximumPresignedExpiry = 604_800

    public let credentials: S3Credentials
    public let region: String
    public let service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to sign: what goes on the wire, before encoding.
    public struct Request: Sendable {
        public var method: String
        /// `host` or `host:port` (the port only when it is not the scheme's default).
        public var host: String
        /// The decoded path, starting with `/`, e.g. `/bucket/backups/clinic/backup.sql.zst`.
        public var path: String
        /// Decoded query parameters; order does not matter.
        public var query: [(name: String, value: String)]
        /// Headers to sign besides `host` (and the `x-amz-*` headers the signer adds).
        public var headers: [(name: String, value: String)]

        public init(method: String, host: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)] = []) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// Signs with an `Authorization` header. Returns the headers to send in addition to `request.headers`:
    /// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (with a session token) and `Authorization`.
    ///
    /// - Parameter payloadHash: the hex SHA-256 of the body, or ``unsignedPayload``.
    public func signedHeaders(for request: Request, payloadHash: String, date: Date) -> [(name: String, value: String)] {
        sign(request, payloadHash: payloadHash, date: date).headers
    }

    /// ``signedHeaders(for:payloadHash:date:)``, and the signature on its own (the seed of a chunked payload).
    func sign(_ request: Request, payloadHash: String, date: Date) -> (headers: [(name: String, value: String)], signature: String) {
        let amzDate = Self.amzDate(date)
        var added: [(name: String, value: String)] = [("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        let headers = Self.canonicalHeaderList(host: request.host, headers: request.headers + added)
        let canonical = Self.canonicalRequest(
            method: request.method, path: request.path, query: request.query, headers: headers, payloadHash: payloadHash)
        let signature = self.signature(canonicalRequest: canonical, amzDate: amzDate)
        let signedNames = headers.map(\.name).joined(separator: ";")
        added.append((
            "Authorization",
            "\(Self.algorithm) Credential=\(credentials.accessKeyId)/\(scope(amzDate)), SignedHeaders=\(signedNames), Signature=\(signature)"
        ))
        return (added, signature)
    }

    /// Signs with query parameters (a presigned URL). Returns the query to send, the request's own
    /// parameters followed by the `X-Amz-*` ones, ending with `X-Amz-Signature`, all decoded.
    ///
    /// - Throws: ``PresignError`` when `expires` is outside 1 s … 7 days, or outlives temporary credentials.
    public func presignedQuery(for request: Request, expires: Int, date: Date) throws(PresignError) -> [(name: String, value: String)] {
        guard expires >= 1, expires <= Self.maximumPresignedExpiry else {
            throw .expiryOutOfRange(expires)
        }
        if let expiration = credentials.expiration, date.addingTimeInterval(TimeInterval(expires)) > expiration {
            throw .outlivesCredentials(expires: expires, credentialsExpireAt: expiration)
        }
        let amzDate = Self.amzDate(date)
        let headers = Self.canonicalHeaderList(host: request.host, headers: request.headers)
        var query = request.query
        query.append(("X-Amz-Algorithm", Self.algorithm))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyId)/\(scope(amzDate))"))
        query.append(("X-Amz-Date", amzDate))
        query.append(("X-Amz-Expires", String(expires)))
        query.append(("X-Amz-SignedHeaders", headers.map(\.name).joined(separator: ";")))
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        let canonical = Self.canonicalRequest(
            method: request.method, path: request.path, query: query, headers: headers, payloadHash: Self.unsignedPayload)
        query.append(("X-Amz-Signature", signature(canonicalRequest: canonical, amzDate: amzDate)))
        return query
    }

    // MARK: - The pieces of the algorithm

    /// `yyyyMMdd/region/service/aws4_request`.
    func scope(_ amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    func signature(canonicalRequest: String, amzDate: String) -> String {
        let stringToSign = [
            Self.algorithm,
            amzDate,
            scope(amzDate),
            Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(amzDate)))
    }

    /// The key of one day's scope: HMAC chain over date, region, service and `aws4_request`.
    func signingKey(_ amzDate: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [String(amzDate.prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    static func canonicalRequest(
        method: String,
        path: String,
        query: [(name: String, value: String)],
        headers: [(name: String, value: String)],
        payloadHash: String
    ) -> String {
        let encoded: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.name, keepSlash: false), uriEncode(pair.value, keepSlash: false))
        }
        let sorted = encoded.sorted { left, right in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        let canonicalQuery = sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        let canonicalHeaders = headers.map { "\($0.name):\($0.value)\n" }.joined()
        return [
            method.uppercased(),
            uriEncode(path, keepSlash: true),
            canonicalQuery,
            canonicalHeaders,
            headers.map(\.name).joined(separator: ";"),
            payloadHash,
        ].joined(separator: "\n")
    }

    /// Lower-cased names, values trimmed with inner runs of spaces collapsed, repeated names joined with
    /// commas, sorted by name.
    static func canonicalHeaderList(host: String, headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var merged: [String: [String]] = ["host": [host]]
        for (name, value) in headers {
            let lower = name.lowercased()
            guard lower != "host" else { continue }
            let collapsed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[lower, default: []].append(collapsed)
        }
        return merged.map { ($0.key, $0.value.joined(separator: ",")) }.sorted { $0.0 < $1.0 }
    }

    /// RFC 3986 percent-encoding of the UTF-8 bytes: unreserved characters kept, `/` kept when asked.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepSlash && byte == slash) {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result.append("%")
                result.append(hexDigits[Int(byte >> 4)])
                result.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return result
    }

    private static let hexDigits: [Character] = Array("0123456789ABCDEF")
    private static let slash = UInt8(ascii: "/")

    /// RFC 3986 unreserved: `A-Z a-z 0-9 - _ . ~`.
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39: return true
        case 0x2D, 0x5F, 0x2E, 0x7E: return true
        default: return false
        }
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func amzDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}

/// A presigned URL that S3 would refuse or that would stop working early.
public enum PresignError: Error, Equatable, CustomStringConvertible {
    case expiryOutOfRange(Int)
    case outlivesCredentials(expires: Int, credentialsExpireAt: Date)

    public var description: String {
        switch self {
        case .expiryOutOfRange(let seconds):
            return "a presigned URL must expire in 1 to \(SigV4Signer.maximumPresignedExpiry) seconds (7 days); \(seconds) was asked"
        case .outlivesCredentials(let seconds, let expiration):
            return "a presigned URL valid for \(seconds) s would outlive the temporary credentials that sign it "
                + "(they expire at \(expiration)); ask for a shorter expiry"
        }
    }
}
