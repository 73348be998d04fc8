/// Runs `work` while `watch` waits for a reason to stop it: when `watch` returns an event, `work` is cancelled
/// (and still awaited, so it can abort what it started); when `work` finishes first, `watch` is cancelled.
///
/// One shape for every "stop this when that happens": a tenant's lost lock, the daemon's stop timeout, an
/// operator's SIGTERM. `watch` returns `nil` when it ends without firing (it was cancelled).
func withWatcher<Result: Sendable, Event: Sendable>(
    _ work: @escaping @Sendable () async -> Result,
    until watch: @escaping @Sendable () async -> Event?,
    onEvent: @Sendable (Event) -> Void = { _ in }
) async -> (result: Result, event: Event?) {
    return await withTaskGroup(of: WatchedStep<Result, Event>.self) { group in
        group.addTask { .finished(await work()) }
        group.addTask { await watch().map(WatchedStep.fired) ?? .watchEnded }
        var result: Result?
        var event: Event?
        for await step in group {
            switch step {
            case .finished(let finished):
                result = finished
                group.cancelAll()
            case .fired(let fired):
                event = fired
                onEvent(fired)
                group.cancelAll()
            case .watchEnded:
                break
            }
        }
        // `work` always returns (a cancelled one with its own failure), so `result` is set once the group is done.
        return (result!, event)
    }
}

/// What finished first in ``withWatcher(_:until:onEvent:)``.
private enum WatchedStep<Result: Sendable, Event: Sendable>: Sendable {
    case finished(Result)
    case fired(Event)
    case watchEnded
}
