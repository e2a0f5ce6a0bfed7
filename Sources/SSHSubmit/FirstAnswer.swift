import Synchronization

/// A continuation resumed by whichever of several racers answers first (a result, a timer, a cancellation); later
/// answers are ignored, and an answer that arrives before the continuation is installed is kept for it.
///
/// Races built this way return at once on timeout or cancellation even when the losing side ignores task
/// cancellation (a libssh2 dial shared by other waiters, a URLSession transfer).
public final class FirstAnswer<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, Never>?
        var value: Value?
        var done = false
    }
    private let state = Mutex(State())

    public init() {}

    public func install(_ continuation: CheckedContinuation<Value, Never>) {
        let ready = state.withLock { s -> Value? in
            if let v = s.value, !s.done {
                s.done = true
                return v
            }
            s.continuation = continuation
            return nil
        }
        if let ready { continuation.resume(returning: ready) }
    }

    public func resume(with value: Value) {
        let continuation = state.withLock { s -> CheckedContinuation<Value, Never>? in
            if s.done || s.value != nil { return nil }
            guard let c = s.continuation else {
                s.value = value
                return nil
            }
            s.done = true
            s.continuation = nil
            return c
        }
        continuation?.resume(returning: value)
    }

    /// Waits for the first answer; cancelling the waiting task answers with `onCancel()`.
    public func value(onCancel: @escaping @Sendable () -> Value) async -> Value {
        await withTaskCancellationHandler {
            await withCheckedContinuation { install($0) }
        } onCancel: {
            resume(with: onCancel())
        }
    }
}
