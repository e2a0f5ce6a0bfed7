import Synchronization

/// The batch systems the drivers speak.
public enum BatchSystem: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case slurm
    /// Torque, or PBS Pro / OpenPBS (see `PBSFlavor`).
    case pbs
    /// Son of Grid Engine, Univa/Altair Grid Engine.
    case sge
    case htcondor

    public var description: String { rawValue }
}

/// A batch system's own job ID, parsed into a typed value and compared by equality only (LESSONS §5): never by
/// substring or prefix, so `12` never matches `123` and `123` never matches `4123`.
///
/// Normalisation:
/// - SLURM: `123`, array task `123_4`; steps (`123.batch`, `123_4.extern`, `123.0`) fold into their job; a
///   federation suffix (`123;cluster`) is dropped (the cluster is reported separately by `sbatch --parsable`).
/// - PBS: `123.server`, array element `123[4].server`; the server is compared by its first DNS label, so
///   `1.pbs` equals `1.pbs.example.org` (qsub and qstat disagree on the domain at some sites); `text` keeps what
///   the server printed, for commands.
/// - SGE: `123` or array task `123.4`.
/// - HTCondor: `cluster.proc` (`123.0`); a bare cluster (`123`) means the whole cluster.
public struct NativeJobID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// SLURM job (array job) ID, PBS sequence number, SGE job number, HTCondor cluster.
    public let job: UInt64
    private let rawTask: Int32  // -1: none (tasks, array indices and procs are below 2^31 on every system)
    /// PBS only: interned server name as printed, and its first label (compared).
    private let serverKey: UInt32
    private let serverName: UInt32
    public let system: BatchSystem  // last: the value packs into 24 bytes

    public init(system: BatchSystem, job: UInt64, task: Int64? = nil, server: String? = nil) {
        self.system = system
        self.job = job
        self.rawTask = task.map { Int32(clamping: max($0, 0)) } ?? -1
        if let server, !server.isEmpty {
            serverName = ServerNames.shared.id(server)
            serverKey = ServerNames.shared.id(String(server.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)[0]))
        } else {
            serverName = 0
            serverKey = 0
        }
    }

    /// SLURM array task, PBS array index, SGE task, HTCondor proc.
    public var task: Int64? { rawTask < 0 ? nil : Int64(rawTask) }
    /// PBS only: the server part as printed (for commands); equality uses its first label.
    public var server: String? { serverName == 0 ? nil : ServerNames.shared.name(serverName) }

    public static func slurm(_ job: UInt64, task: Int64? = nil) -> NativeJobID { .init(system: .slurm, job: job, task: task) }
    public static func sge(_ job: UInt64, task: Int64? = nil) -> NativeJobID { .init(system: .sge, job: job, task: task) }
    public static func htcondor(_ cluster: UInt64, _ proc: Int64?) -> NativeJobID { .init(system: .htcondor, job: cluster, task: proc) }
    public static func pbs(_ job: UInt64, index: Int64? = nil, server: String?) -> NativeJobID {
        .init(system: .pbs, job: job, task: index, server: server)
    }

    /// The ID as the batch system's commands take it.
    public var text: String {
        switch system {
        case .slurm: return task.map { "\(job)_\($0)" } ?? "\(job)"
        case .sge, .htcondor: return task.map { "\(job).\($0)" } ?? "\(job)"
        case .pbs:
            let base = task.map { "\(job)[\($0)]" } ?? "\(job)"
            return server.map { "\(base).\($0)" } ?? base
        }
    }

    public var description: String { text }

    /// The same ID without its task (the array job itself).
    public var parent: NativeJobID { NativeJobID(system: system, job: job, task: nil, server: server) }

    public static func == (a: NativeJobID, b: NativeJobID) -> Bool {
        a.job == b.job && a.rawTask == b.rawTask && a.system == b.system && a.serverKey == b.serverKey
    }

    public func hash(into h: inout Hasher) {
        h.combine(job)
        h.combine(rawTask)
        h.combine(serverKey)
    }

    public static func < (a: NativeJobID, b: NativeJobID) -> Bool {
        (a.job, a.rawTask) < (b.job, b.rawTask)
    }

    // MARK: - Parsing

    /// Parses an ID as the given system prints it; nil when it is not a valid ID of that system.
    public init?(_ text: String, system: BatchSystem) {
        var text = text
        let parsed: NativeJobID? = text.withUTF8 { buf in
            let b = UnsafeRawBufferPointer(buf)
            switch system {
            case .slurm:
                switch Self.parseSlurm(b) {
                case .single(let id)?, .step(let id)?: return id
                default: return nil
                }
            case .pbs: return Self.parsePBS(b)
            case .sge: return Self.parseDotted(b, system: .sge)
            case .htcondor: return Self.parseDotted(b, system: .htcondor)
            }
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// What a SLURM ID field holds: one job or task, or a pending array range such as `123_[1-5,7%2]`.
    enum SlurmIDField: Equatable {
        case single(NativeJobID)
        /// A step of a job (`123.batch`, `123_4.0`): reported under its job, but the job's own row wins.
        case step(NativeJobID)
        case range(job: UInt64, tasks: [Int64])
    }

    /// Parses `123`, `123_4`, `123_4.batch`, `123.extern`, `123;cluster`, `123_[1-3,5%2]`. Allocation-free for the
    /// single forms.
    static func parseSlurm(_ b: UnsafeRawBufferPointer) -> SlurmIDField? {
        var i = 0
        let n = b.count
        guard let job = digits(b, &i), job.1 > 0 else { return nil }
        var task: Int64?
        if i == n { return .single(.slurm(job.0)) }
        if b[i] == UInt8(ascii: "_") {
            i += 1
            if i < n, b[i] == UInt8(ascii: "[") {
                return parseSlurmRange(b, from: i + 1, job: job.0)
            }
            guard let t = digits(b, &i), t.1 > 0 else { return nil }
            task = Int64(t.0)
        }
        // What may follow: a step (".batch", ".extern", ".0", ".interactive"), a heterogeneous component ("+1") or
        // ";cluster"; they are dropped, and a step is marked as such.
        if i < n {
            switch b[i] {
            case UInt8(ascii: "."): return .step(.slurm(job.0, task: task))
            case UInt8(ascii: ";"), UInt8(ascii: "+"): break
            default: return nil
            }
        }
        return .single(.slurm(job.0, task: task))
    }

    private static func parseSlurmRange(_ b: UnsafeRawBufferPointer, from start: Int, job: UInt64) -> SlurmIDField? {
        var i = start
        var tasks: [Int64] = []
        while i < b.count {
            guard let lo = digits(b, &i), lo.1 > 0 else { return nil }
            var hi = lo.0
            if i < b.count, b[i] == UInt8(ascii: "-") {
                i += 1
                guard let h = digits(b, &i), h.1 > 0, h.0 >= lo.0, h.0 - lo.0 < 1_000_000 else { return nil }
                hi = h.0
            }
            var step: UInt64 = 1
            if i < b.count, b[i] == UInt8(ascii: ":") {  // a stepped range, 1-9:2
                i += 1
                guard let s = digits(b, &i), s.1 > 0, s.0 > 0 else { return nil }
                step = s.0
            }
            tasks.append(contentsOf: stride(from: lo.0, through: hi, by: Int(step)).map { Int64($0) })
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "%"):  // throttle: 1-100%10
                while i < b.count, b[i] != UInt8(ascii: "]") { i += 1 }
                guard i < b.count else { return nil }
                return .range(job: job, tasks: tasks)
            case UInt8(ascii: "]"): return .range(job: job, tasks: tasks)
            default: return nil
            }
        }
        return nil
    }

    /// `123.server`, `123[4].server`, `123[].server` (the array itself), `123`.
    static func parsePBS(_ b: UnsafeRawBufferPointer) -> NativeJobID? {
        var i = 0
        guard let job = digits(b, &i), job.1 > 0 else { return nil }
        var index: Int64?
        if i < b.count, b[i] == UInt8(ascii: "[") {
            i += 1
            if let d = digits(b, &i), d.1 > 0 { index = Int64(d.0) }
            guard i < b.count, b[i] == UInt8(ascii: "]") else { return nil }
            i += 1
        }
        var server: String?
        if i < b.count {
            guard b[i] == UInt8(ascii: "."), i + 1 < b.count else { return nil }
            let rest = UnsafeRawBufferPointer(rebasing: b[(i + 1)...])
            guard rest.allSatisfy({ isHostByte($0) }) else { return nil }
            server = String(decoding: rest, as: UTF8.self)
        }
        return .pbs(job.0, index: index, server: server)
    }

    /// `123` or `123.4` (SGE job.task, HTCondor cluster.proc).
    static func parseDotted(_ b: UnsafeRawBufferPointer, system: BatchSystem) -> NativeJobID? {
        var i = 0
        guard let job = digits(b, &i), job.1 > 0 else { return nil }
        var task: Int64?
        if i < b.count {
            guard b[i] == UInt8(ascii: ".") else { return nil }
            i += 1
            guard let t = digits(b, &i), t.1 > 0, i == b.count else { return nil }
            task = Int64(t.0)
        }
        return NativeJobID(system: system, job: job.0, task: task)
    }

    /// Reads decimal digits at `i`; returns (value, digit count), nil on overflow.
    @inline(__always)
    static func digits(_ b: UnsafeRawBufferPointer, _ i: inout Int) -> (UInt64, Int)? {
        var v: UInt64 = 0
        let start = i
        while i < b.count {
            let c = b[i] &- UInt8(ascii: "0")
            guard c < 10 else { break }
            if i - start >= 19 { return nil }
            v = v &* 10 &+ UInt64(c)
            i += 1
        }
        return (v, i - start)
    }

    private static func isHostByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
            || c == UInt8(ascii: "_")
    }
}

/// PBS server names, interned so that `NativeJobID` stays a plain value. A deployment talks to a handful of servers;
/// the table only grows with new server names, never with jobs.
final class ServerNames: Sendable {
    static let shared = ServerNames()
    private let table = Mutex<(names: [String], ids: [String: UInt32])>(([""], [:]))

    func id(_ name: String) -> UInt32 {
        table.withLock { t in
            if let id = t.ids[name] { return id }
            let id = UInt32(t.names.count)
            t.names.append(name)
            t.ids[name] = id
            return id
        }
    }

    func name(_ id: UInt32) -> String { table.withLock { Int(id) < $0.names.count ? $0.names[Int(id)] : "" } }
}
