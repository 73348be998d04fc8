import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// Drives the verifying proxy's control API: inject faults, read the requests it saw.
///
/// Rules and the request log are shared by every test: always match on a path holding the test's own
/// bucket, so parallel tests never see each other's faults.
public struct ProxyControl: Sendable {
    public let baseURL: URL

    /// One fault: which requests it hits and what happens to them.
    public struct Fault: Encodable, Sendable {
        public enum Action: String, Encodable, Sendable {
            /// Answer with `status` and S3 error `code`, without forwarding.
            case error
            /// Close the connection with a reset before answering.
            case reset
            /// Forward to S3, then reset the connection instead of answering (the request took effect).
            case resetAfterForward = "reset_after_forward"
            /// Wait `delayMilliseconds`, then forward.
            case delay
            /// Forward, then send the answer at `bytesPerSecond`.
            case bandwidth
            /// Answer `status` (200) with `body`, without forwarding: a store that answers with something else.
            case respond
            /// Forward with one byte of the body flipped after the checks (without Content-MD5): a store that
            /// keeps other bytes than it was sent.
            case mangle
        }

        public var method: String?
        /// A regular expression searched in the decoded path (`/bucket/key`).
        public var path: String
        /// A substring the raw query must contain.
        public var query: String?
        public var action: Action
        /// How many matching requests are hit; 0 means all of them.
        public var times: Int
        public var status: Int?
        public var code: String?
        public var delayMilliseconds: Int?
        public var bytesPerSecond: Int?
        /// Only aws-chunked requests (true) or only the others (false); nil for both.
        public var streaming: Bool?
        /// For ``Action/respond``: the body sent.
        public var body: String?

        public init(
            method: String? = nil, path: String, query: String? = nil, action: Action, times: Int = 1,
            status: Int? = nil, code: String? = nil, delayMilliseconds: Int? = nil, bytesPerSecond: Int? = nil,
            streaming: Bool? = nil, body: String? = nil
        ) {
            self.streaming = streaming
            self.body = body
            self.method = method
            self.path = path
            self.query = query
            self.action = action
            self.times = times
            self.status = status
            self.code = code
            self.delayMilliseconds = delayMilliseconds
            self.bytesPerSecond = bytesPerSecond
        }

        enum CodingKeys: String, CodingKey {
            case method, path, query, action, times, status, code, streaming, body
            case delayMilliseconds = "delay_ms"
            case bytesPerSecond = "bytes_per_second"
        }
    }

    /// A request the proxy saw.
    public struct SeenRequest: Decodable, Sendable {
        public let method: String
        public let path: String
        public let query: String
        /// The HTTP status, or `"reset"` when the connection was dropped.
        public let status: StatusValue?
        public let error: String?
        public let fault: String?
        /// Whether its body came aws-chunked.
        public let streaming: Bool?
        /// Its place in the order requests arrived (they are listed as they ended: a retry may end first).
        public let arrival: Int?
        /// The body's data bytes that reached the proxy (of an aws-chunked body cut short, those that came).
        public let received: Int?

        public enum StatusValue: Decodable, Sendable, Equatable {
            case code(Int)
            case reset

            public init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Int.self) { self = .code(number) } else { self = .reset }
            }
        }
    }

    public func inject(_ faults: [Fault]) async throws {
        struct Body: Encodable { let rules: [Fault] }
        try await call("POST", "faults", body: try JSONEncoder().encode(Body(rules: faults)))
    }

    /// Every request whose decoded path matches `pathPattern` (a regular expression).
    public func requests(matching pathPattern: String) async throws -> [SeenRequest] {
        try await listed("requests", matching: pathPattern)
    }

    /// Requests that arrived and have not ended yet (``requests(matching:)`` lists a request once it ended: one
    /// the client gave up on may end later than its retry).
    public func inFlight(matching pathPattern: String) async throws -> [SeenRequest] {
        try await listed("inflight", matching: pathPattern)
    }

    /// Waits (up to `timeout`) until no request matching `pathPattern` is in flight.
    public func settle(matching pathPattern: String, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !inFlight(matching: pathPattern).isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func listed(_ name: String, matching pathPattern: String) async throws -> [SeenRequest] {
        struct Answer: Decodable { let requests: [SeenRequest] }
        var components = URLComponents(url: baseURL.appendingPathComponent("__proxy/\(name)"), resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "path", value: pathPattern)]
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        return try JSONDecoder().decode(Answer.self, from: Data(buffer: body)).requests
    }

    @discardableResult
    private func call(_ method: String, _ name: String, body: Data? = nil) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: baseURL.appendingPathComponent("__proxy/\(name)").absoluteString)
        request.method = .init(rawValue: method)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Content-Length", value: String(body.count))
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return try await response.body.collect(upTo: 1 << 20)
    }
}
