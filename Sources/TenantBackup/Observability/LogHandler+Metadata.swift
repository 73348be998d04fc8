import Logging

extension LogHandler {
    /// The metadata of one event: the handler's, then its provider's, then the event's own (later wins).
    func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        return merged
    }
}
