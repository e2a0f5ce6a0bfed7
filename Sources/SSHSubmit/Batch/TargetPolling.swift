/// One target's answer in a polling round.
public struct TargetPoll: Sendable {
    public var target: String
    public var system: BatchSystem
    public var result: Result<StatusReport, BatchError>
    public var duration: Duration
}

/// Polls several targets at once, each in its own child task with its own timeouts (LESSONS §9), and hands each
/// answer to `body` as soon as it arrives: a dead or slow target delays nobody else. Returns when every target has
/// answered or failed.
public func pollTargets(_ targets: [(backend: any BatchBackend, ids: [NativeJobID])],
                        _ body: (TargetPoll) async -> Void) async {
    await withTaskGroup(of: TargetPoll.self) { group in
        for (backend, ids) in targets {
            group.addTask {
                let start = ContinuousClock.now
                let result: Result<StatusReport, BatchError>
                do throws(BatchError) {
                    result = .success(try await backend.status(ids))
                } catch {
                    result = .failure(error)
                }
                return TargetPoll(target: backend.target, system: backend.system, result: result, duration: ContinuousClock.now - start)
            }
        }
        for await poll in group { await body(poll) }
    }
}
