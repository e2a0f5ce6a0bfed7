import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's pid file, next to its journal (`<journal>.pid`): `apf-agent run` refuses to start a second daemon on
/// the same journal, and the CLI verbs (`status`, `queue enable|disable`) find the daemon through it.
public struct PIDFile: Sendable {
    public let path: String

    public init(journalPath: String) { path = journalPath + ".pid" }

    public init(path: String) { self.path = path }

    /// The pid written in the file, if that process is alive.
    public func runningPID() -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return nil }
        guard kill(pid, 0) == 0 || errno == EPERM else { return nil }
        // A recycled pid: the process must be an apf-agent.
        if let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
            !String(decoding: cmdline, as: UTF8.self).contains("apf-agent")
        {
            return nil
        }
        return pid
    }

    /// Writes this process's pid (atomically, mode 0644); refuses when another live daemon holds the file.
    public func acquire() throws(FactoryError) {
        if let other = runningPID(), other != getpid() {
            throw FactoryError(.journal, "another apf-agent (pid \(other)) runs on this journal (\(path)); stop it first")
        }
        let temp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temp, contents: Data("\(getpid())\n".utf8),
                                             attributes: [.posixPermissions: 0o644]),
            rename(temp, path) == 0
        else {
            try? FileManager.default.removeItem(atPath: temp)
            throw FactoryError(.journal, "cannot write the pid file \(path)")
        }
    }

    /// Removes the file if it still names this process.
    public func release() {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) == getpid()
        else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Sends `signal` to the running daemon; false when none runs.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        guard let pid = runningPID() else { return false }
        return kill(pid, signal) == 0
    }
}
