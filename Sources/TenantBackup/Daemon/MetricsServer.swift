import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves the Prometheus text format on `GET /metrics` (default 127.0.0.1:9187), from the registry the
/// daemon bootstrapped swift-metrics with. Anything else is 404; nothing but metrics is ever served.
///
/// Made by ``bind(address:registry:logger:)`` before the daemon reports ready, so a port in use fails the
/// start; as a service it serves until the graceful shutdown, then closes the socket.
public struct MetricsServer: Service {
    public let address: ListenAddress
    let channel: any Channel
    let logger: Logger

    /// Binds the address, or fails with what to change.
    public static func bind(address: ListenAddress, registry: PrometheusCollectorRegistry, logger: Logger) async throws -> MetricsServer {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.pipeline.configureHTTPServerPipeline().flatMap {
                        channel.pipeline.addHandler(MetricsHandler(registry: registry))
                    }
                }
                .bind(host: address.host, port: address.port).get()
            return MetricsServer(address: address, channel: channel, logger: logger)
        } catch {
            throw MetricsServerError(message: "cannot listen on \(address) for metrics (\(error)); change metrics.listen or set it to off")
        }
    }

    public func run() async throws {
        logger.info("serving metrics", metadata: ["address": "http://\(address)/metrics"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// The metrics endpoint could not start.
public struct MetricsServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

private final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            var body: ByteBuffer
            var headers = HTTPHeaders()
            let status: HTTPResponseStatus
            if head.method == .GET || head.method == .HEAD, path == "/metrics" {
                status = .ok
                body = context.channel.allocator.buffer(bytes: registry.emitToBuffer())
                headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            } else {
                status = .notFound
                body = context.channel.allocator.buffer(string: "not found; metrics are at /metrics\n")
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            }
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            body.clear()
            let closed: EventLoopPromise<Void>? = keepAlive ? nil : context.eventLoop.makePromise()
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: closed)
            if let closed {
                let channel = context.channel
                closed.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
