import Foundation

/// A datagram socket standing in for systemd's notification socket: a daemon started with
/// `NOTIFY_SOCKET=<path>` sends its `READY=1`, `STATUS=…`, `WATCHDOG=1`… here, and tests wait for them.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var received: [(at: ContinuousClock.Instant, message: String)] = []
    private var closed = false

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-notify-\(UUID().uuidString.prefix(8)).sock").path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in receiveLoop() }
        thread.name = "notify-socket"
        thread.start()
    }

    deinit { close() }

    public func close() {
        lock.lock()
        let wasClosed = closed
        closed = true
        lock.unlock()
        if !wasClosed { unlink(path) }
    }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            lock.lock()
            let stop = closed
            lock.unlock()
            if stop { break }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let message = String(decoding: buffer[0..<count], as: UTF8.self)
            lock.lock()
            received.append((.now, message))
            lock.unlock()
        }
        Glibc.close(descriptor)
    }

    /// Every datagram so far, oldest first.
    public var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return received.map(\.message)
    }

    /// Waits for a datagram after index `start` that satisfies `predicate`, and returns its index and text.
    @discardableResult
    public func waitFor(
        after start: Int = -1, timeout: Duration = .seconds(180), _ description: String, _ predicate: (String) -> Bool
    ) async throws -> (index: Int, message: String) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let all = messages
            if let index = all.indices.first(where: { $0 > start && predicate(all[$0]) }) { return (index, all[index]) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(what: "\(description); received: \(messages.filter { $0 != "WATCHDOG=1" }.suffix(12))")
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public let what: String
        public var description: String { "timed out waiting for \(what)" }
    }
}
