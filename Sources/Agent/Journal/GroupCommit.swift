import Foundation
import GRDB
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Group commit for the loop's journal writes: requests that arrive while a transaction is being written wait and
/// go together into the next one (a failing request is written again on its own, so it fails alone). With
/// nothing in flight a request is written at once, so an idle factory adds no latency; a busy one (a thousand
/// queues deciding in the same second) writes a few transactions instead of a thousand.
///
/// Requests run in order on one writer thread, so a request sees every earlier one's writes (the per-tenant and
/// per-target limits rely on it). A request that commits intents marks the batch durable: the WAL is flushed to
/// disk (`fdatasync`) before any waiter resumes, so an intent is on disk before its submit starts, even across a
/// power loss (GRDB runs WAL with `synchronous = NORMAL`, which alone survives process crashes only).
final class GroupCommit: Sendable {
    /// Passed to each request: mark the batch as needing a flush to disk before the waiters resume.
    final class Batch: @unchecked Sendable {
        // @unchecked: used only on the writer thread, inside one flush.
        var durable = false
        func requireDurability() { durable = true }
    }

    private struct Request: Sendable {
        /// Runs the request and keeps its result; throws when the request fails.
        let run: @Sendable (Database, Batch) throws -> Void
        let fail: @Sendable (any Error) -> Void
        let finish: @Sendable () -> Void
    }

    private let store: AgentStore
    private let state = Mutex<(pending: [Request], flushing: Bool)>(([], false))
    private let queue = DispatchQueue(label: "apf-agent.journal.group-commit")

    init(store: AgentStore) { self.store = store }

    /// Runs `body` in the next transaction and returns its result once that transaction is committed (and flushed
    /// to disk when a request asked for it).
    func perform<T: Sendable>(_ body: @escaping @Sendable (Database, Batch) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let box = ResultBox<T>()
            let request = Request(
                run: { db, batch in box.result = .success(try body(db, batch)) },
                fail: { box.result = .failure($0) },
                finish: { c.resume(with: box.result ?? .failure(StoreError(.database, "journal request not run"))) })
            let start = state.withLock { s -> Bool in
                s.pending.append(request)
                if s.flushing { return false }
                s.flushing = true
                return true
            }
            if start { queue.async { self.flush() } }
        }
    }

    /// Writes everything pending in one transaction. If a request fails, that transaction is rolled back and the
    /// requests are written again one transaction each, so only the failing one fails.
    private func flush() {
        while true {
            let batch = state.withLock { s -> [Request] in
                let b = s.pending
                s.pending = []
                if b.isEmpty { s.flushing = false }
                return b
            }
            if batch.isEmpty { return }
            let context = Batch()
            do {
                try store.writer.write { db in for r in batch { try r.run(db, context) } }
            } catch {
                for r in batch {
                    do {
                        try store.writer.write { db in try r.run(db, context) }
                    } catch {
                        r.fail(error)
                    }
                }
            }
            if context.durable { store.flushWAL() }
            for r in batch { r.finish() }
        }
    }
}

/// A result handed from the writer thread to the waiter (written before `finish`, read after).
private final class ResultBox<T>: @unchecked Sendable {
    // @unchecked: written on the writer thread before the continuation resumes, read only after that.
    var result: Result<T, any Error>?
}

extension AgentStore {
    /// Flushes the journal's WAL to disk (a no-op for in-memory journals).
    func flushWAL() {
        guard let pool = writer as? DatabasePool else { return }
        let fd = Glibc.open(pool.path + "-wal", O_RDONLY)
        guard fd >= 0 else { return }
        _ = fdatasync(fd)
        Glibc.close(fd)
    }
}
