import Synchronization

/// Limits SSH handshakes in flight per server address across the process. OpenSSH's `MaxStartups 10:30:100` starts
/// dropping unauthenticated connections at random once 10 are pending, so a burst of pools (agent start-up, many
/// queues on one login node) would otherwise fail at random with "Failed getting banner".
final class DialGate: Sendable {
    static let shared = DialGate(limit: 4)

    private struct Slot {
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let limit: Int
    private let slots = Mutex<[String: Slot]>([:])

    init(limit: Int) { self.limit = limit }

    func withSlot<T>(for key: String, _ body: () async throws(SSHError) -> T) async throws(SSHError) -> T {
        await acquire(key)
        defer { release(key) }
        return try await body()
    }

    private func acquire(_ key: String) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let go = slots.withLock { s -> Bool in
                var slot = s[key, default: Slot()]
                defer { s[key] = slot }
                if slot.inFlight < limit {
                    slot.inFlight += 1
                    return true
                }
                slot.waiters.append(cont)
                return false
            }
            if go { cont.resume() }
        }
    }

    private func release(_ key: String) {
        let next = slots.withLock { s -> CheckedContinuation<Void, Never>? in
            guard var slot = s[key] else { return nil }
            defer { s[key] = slot.inFlight == 0 && slot.waiters.isEmpty ? nil : slot }
            if !slot.waiters.isEmpty { return slot.waiters.removeFirst() }  // the slot passes to the next waiter
            slot.inFlight -= 1
            return nil
        }
        next?.resume()
    }
}
