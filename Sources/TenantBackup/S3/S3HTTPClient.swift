import AsyncHTTPClient
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP clients S3 requests go through: one per (connect timeout, connection limit), for the life of the
/// process (like `HTTPClient.shared`, they are never shut down).
///
/// `HTTPClient.shared` suits a browser, not a backup daemon holding a tenant's lock: it waits 90 s for a
/// connection and, when one is refused, keeps retrying it until the request's deadline, so an endpoint on a
/// closed port took ~90 s per attempt and 7.5 minutes per backup. These clients give up on a connection
/// that is refused, fails its TLS handshake or its DNS lookup at once, and on one that does not open within
/// the connect timeout; the S3 client's own retry policy then decides, with its short backoff.
///
/// - Important: AsyncHTTPClient bounds a request's wait for a pooled connection by the same connect
///   timeout. Streamed parts hold their connection while they fill, so the pool must hold every request a
///   cycle can have open at once (``S3Settings/maximumConnections``): with the 8 connections of
///   `HTTPClient.shared` and a 5 s connect timeout, queued parts failed with `getConnectionFromPoolTimeout`.
public enum S3HTTPClient {
    private struct Key: Hashable {
        let connectMilliseconds: Int64
        let maximumConnections: Int
        let caBundle: String?
    }

    private static let clients = Mutex<[Key: HTTPClient]>([:])

    /// The client for these limits, made on first use. With `caBundle`, HTTPS certificates must chain to the
    /// CAs of that PEM file instead of the system's (the AWS CLI's `AWS_CA_BUNDLE` convention).
    public static func client(connectTimeout: Duration, maximumConnections: Int, caBundle: String? = nil) -> HTTPClient {
        let key = Key(connectMilliseconds: max(1, connectTimeout.milliseconds), maximumConnections: max(8, maximumConnections), caBundle: caBundle)
        return clients.withLock { clients in
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration.singletonConfiguration
            configuration.timeout.connect = .milliseconds(key.connectMilliseconds)
            // Silence after the request is sent (AsyncHTTPClient starts this timer only once the body is
            // out, so a part streaming while it fills is not cut): an endpoint that accepts connections and
            // never answers costs this per attempt, not the 90 s of HTTPClient.shared.
            configuration.timeout.read = .seconds(30)
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = key.maximumConnections
            if let caBundle = key.caBundle {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(caBundle)
                configuration.tlsConfiguration = tls
            }
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}
