import Crypto
import Foundation
import Synchronization

/// One operation of a helper request (see `HelperScript` for the protocol).
public enum HelperOp: Sendable {
    /// Run an argument vector; stdin is /dev/null.
    case exec([String])
    /// Run an argument vector with the request's stdin.
    case execStdin([String])
    /// Write the request's stdin to `path` atomically, with `mode`.
    case write(path: String, mode: UInt32)
    /// Run `argv` for the `ids` that op `reference` did not list (the accounting stage of a status poll).
    case absent(reference: Int, present: PresentIDs, runs: AbsentRuns, argv: [String], ids: [String])

    /// How the helper reads the IDs present in a listing.
    public enum PresentIDs: String, Sendable {
        case firstFieldPipe = "f1|"
        case firstFieldBlank = "f1_"
        case sgeXML = "sgexml"
        case condorJSON = "condorjson"
    }

    /// How absent IDs are handed to the command: one run per job number (`@ID@`), or runs of at most N IDs
    /// (`@IDS@`, `@MAJORS@`, `@N@`).
    public enum AbsentRuns: Sendable {
        case each
        case chunks(Int)
        var text: String {
            switch self {
            case .each: return "each"
            case .chunks(let n): return "\(n)"
            }
        }
    }

    var usesStdin: Bool {
        switch self {
        case .execStdin, .write: return true
        case .absent(_, _, _, _, let ids): return ids.count > Self.argvIDLimit
        case .exec: return false
        }
    }

    /// Above this many IDs an `absent` op takes its IDs from stdin, so argv stays small.
    static let argvIDLimit = 200
}

/// What one helper op returned.
public struct HelperOpResult: Sendable {
    public var exitStatus: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Installs the helper on a target (once, content-addressed) and runs requests through it: several batch commands in
/// one round trip, with framed output and real exit statuses.
public final class RemoteHelper: Sendable {
    public let runner: any CommandRunner
    /// Where the helper lives, relative to the home directory.
    public let directory: String
    private let installedPath = Mutex<String?>(nil)

    public static let scriptBytes: [UInt8] = Array(HelperScript.text.utf8)
    public static let scriptDigest: String = SHA256.hash(data: scriptBytes).map { String(format: "%02x", $0) }.joined()

    public init(runner: any CommandRunner, directory: String = ".apf-agent") {
        self.runner = runner
        self.directory = directory
    }

    /// Uploads the helper unless a file of that name, size and mode is already there; returns its path.
    @discardableResult
    public func install() async throws(BatchError) -> String {
        if let p = installedPath.withLock({ $0 }) { return p }
        do {
            let path = try await runner.install(Self.scriptBytes, directory: directory, prefix: "helper-", suffix: ".sh", mode: 0o700)
            installedPath.withLock { $0 = path }
            return path
        } catch {
            throw BatchError(.helper, "cannot install the remote helper in ~/\(directory): \(error.message)", target: runner.target,
                             permanent: !error.isRetryable, transport: error)
        }
    }

    /// Runs `ops` in one round trip. `stdin` goes to the one op that reads it (`execStdin`, `write`, or an `absent`
    /// op with many IDs). Transport errors come back as `.transport`; `mayHaveRun` is in `error.transport`.
    public func run(_ ops: [HelperOp], stdin: [UInt8] = [], timeout: Duration? = nil) async throws(BatchError) -> [HelperOpResult] {
        let (argvTail, input) = try Self.encode(ops, stdin: stdin)
        var attempt = 0
        while true {
            attempt += 1
            let path = try await install()
            let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let command = RemoteCommand(["sh", path, "APF1", nonce] + argvTail, stdin: input, timeout: timeout)
            let result: ExecResult
            do {
                result = try await runner.run(command)
            } catch {
                throw BatchError(.transport, error.message, target: runner.target, permanent: false, transport: error)
            }
            if let frame = Self.parseFrame(result.stdout, nonce: nonce, count: ops.count) { return frame }
            // No frame. A missing helper file means nothing ran: safe to upload it again and repeat once.
            let err = result.stderrText
            if attempt == 1, Self.helperMissing(err) {
                installedPath.withLock { $0 = nil }
                _ = try? await runner.run(RemoteCommand(["rm", "-f", "--", path]))
                continue
            }
            let why = err.split(separator: "\n").first.map(String.init) ?? "no output"
            switch result.exitStatus {
            case 2: throw BatchError(.helper, "the helper refused the request: \(why)", target: runner.target, permanent: true)
            case 3: throw BatchError(.helper, "the helper could not start: \(why)", target: runner.target, permanent: false)
            default:
                throw BatchError(.helper, "the helper returned no valid frame (exit \(result.exitStatus)\(result.exitSignal.map { ", signal \($0)" } ?? "")): \(why)",
                                 target: runner.target, permanent: false)
            }
        }
    }

    /// Runs independent ops (none refers to another or reads stdin), in as few round trips as the command-line
    /// budget allows: the whole remote command line is one argument of the remote `sh -c`, and Linux caps a single
    /// argument at 128 KiB (`MAX_ARG_STRLEN`), whatever `ARG_MAX` says.
    public func runIndependent(_ ops: [HelperOp], timeout: Duration? = nil) async throws(BatchError) -> [HelperOpResult] {
        var results: [HelperOpResult] = []
        for group in Self.pack(ops, budget: Self.commandBudget) {
            results += try await run(group, timeout: timeout)
        }
        return results
    }

    /// Bytes of encoded arguments per helper call (quoting overhead included, with margin under 128 KiB).
    static let commandBudget = 96 * 1024

    static func pack(_ ops: [HelperOp], budget: Int) -> [[HelperOp]] {
        var groups: [[HelperOp]] = []
        var current: [HelperOp] = []
        var size = 0
        for op in ops {
            let cost = op.encodedSize
            if !current.isEmpty, size + cost > budget {
                groups.append(current)
                current = []
                size = 0
            }
            current.append(op)
            size += cost
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    static func helperMissing(_ stderr: String) -> Bool {
        stderr.contains("No such file") || stderr.contains("Can't open") || stderr.contains("cannot open")
    }

    /// The argv tail and stdin of a request. Arguments may not contain newlines or NUL (the helper stores them one
    /// a line); the drivers never need either.
    static func encode(_ ops: [HelperOp], stdin: [UInt8]) throws(BatchError) -> ([String], [UInt8]) {
        var argv: [String] = []
        var input = stdin
        var stdinUsers = 0
        func check(_ args: [String]) throws(BatchError) {
            for a in args where a.utf8.contains(where: { $0 == 10 || $0 == 0 }) {
                throw BatchError(.invalidOption, "an argument contains a newline or NUL byte: \(a.debugDescription)", permanent: true)
            }
        }
        for (index, op) in ops.enumerated() {
            if op.usesStdin { stdinUsers += 1 }
            switch op {
            case .exec(let a), .execStdin(let a):
                guard !a.isEmpty else { throw BatchError(.invalidOption, "empty command in a helper request", permanent: true) }
                try check(a)
                argv += [op.isExecStdin ? "xi" : "x", "\(a.count)"] + a
            case .write(let path, let mode):
                try check([path])
                argv += ["w", path, String(mode, radix: 8)]
            case .absent(let reference, let present, let runs, let a, let ids):
                guard reference >= 0, reference < index, !a.isEmpty else {
                    throw BatchError(.invalidOption, "helper op \(index) refers to op \(reference)", permanent: true)
                }
                try check(a)
                try check(ids)
                argv += ["a", "\(reference)", present.rawValue, runs.text, "\(a.count)"] + a
                if ids.count > HelperOp.argvIDLimit {
                    argv.append("-")
                    input = Array(ids.joined(separator: "\n").utf8) + [10]
                } else {
                    argv += ["\(ids.count)"] + ids
                }
            }
        }
        guard stdinUsers <= 1 else {
            throw BatchError(.invalidOption, "at most one op of a helper request may read stdin", permanent: true)
        }
        return (argv, input)
    }

    /// Finds `APF1 <len>\n<header>` with our nonce (anything before it — banners, shell noise — is skipped) and
    /// splits the payload by the header's byte counts.
    static func parseFrame(_ out: [UInt8], nonce: String, count: Int) -> [HelperOpResult]? {
        let marker = Array("APF1 ".utf8)
        var searchFrom = 0
        while let start = find(marker, in: out, from: searchFrom) {
            searchFrom = start + 1
            guard start == 0 || out[start - 1] == 10 else { continue }
            var i = start + marker.count
            var len = 0
            while i < out.count, out[i] >= 48, out[i] <= 57, len < 10_000_000 { len = len * 10 + Int(out[i] - 48); i += 1 }
            guard i < out.count, out[i] == 10, i + 1 + len <= out.count else { continue }
            let header = Array(out[(i + 1)..<(i + 1 + len)])
            guard let json = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any],
                  json["nonce"] as? String == nonce, let ops = json["ops"] as? [[String: Any]], ops.count == count
            else { continue }
            var offset = i + 1 + len
            var results: [HelperOpResult] = []
            for op in ops {
                guard let rc = (op["rc"] as? NSNumber)?.int32Value, let o = (op["out"] as? NSNumber)?.intValue,
                      let e = (op["err"] as? NSNumber)?.intValue, o >= 0, e >= 0, offset + o + e <= out.count
                else { return nil }
                results.append(HelperOpResult(exitStatus: rc, stdout: Array(out[offset..<(offset + o)]),
                                              stderr: Array(out[(offset + o)..<(offset + o + e)])))
                offset += o + e
            }
            return results
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard needle.count <= hay.count, from <= hay.count - needle.count else { return nil }
        var i = from
        while i <= hay.count - needle.count {
            if hay[i] == needle[0], Array(hay[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}

extension HelperOp {
    /// Rough size on the remote command line: quoted arguments plus separators.
    var encodedSize: Int {
        func q(_ a: [String]) -> Int { a.reduce(0) { $0 + ShellQuote.quote($1).utf8.count + 1 } }
        switch self {
        case .exec(let a), .execStdin(let a): return q(a) + 8
        case .write(let path, _): return q([path]) + 12
        case .absent(_, _, _, let a, let ids): return q(a) + (ids.count > Self.argvIDLimit ? 0 : q(ids)) + 24
        }
    }

    var isExecStdin: Bool { if case .execStdin = self { return true } else { return false } }
}
