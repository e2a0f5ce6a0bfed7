import Agent
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 (a random port) for tests: one thread accepts, one thread per request.
/// It is a fake: it answers every GET with what `handler` returns for the path, and records the paths asked.
final class LocalHTTPServer: Sendable {
    struct Reply: Sendable {
        var status: Int
        var body: Data
        /// Seconds to wait before answering (to test timeouts).
        var delay: Double = 0
    }

    typealias Handler = @Sendable (_ path: String, _ index: Int) -> Reply

    let port: UInt16
    private let fd: Int32
    private let handler: Handler
    private let state = Mutex<(requests: [String], open: Bool)>(([], true))

    init(handler: @escaping Handler) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: addr.sin_port)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var requests: [String] { state.withLock { $0.requests } }

    func stop() {
        state.withLock { $0.open = false }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func acceptLoop() {
        while state.withLock({ $0.open }) {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            Thread.detachNewThread { [self] in serve(c) }
        }
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var request = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while !request.containsHeaderEnd {
            let n = read(c, &buf, buf.count)
            if n <= 0 { return }
            request += buf[0..<n]
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let path = parts.count > 1 ? String(parts[1]) : "/"
        let index = state.withLock { s -> Int in
            s.requests.append(path)
            return s.requests.count - 1
        }
        let reply = handler(path, index)
        if reply.delay > 0 { Thread.sleep(forTimeInterval: reply.delay) }
        let head =
            "HTTP/1.1 \(reply.status) \(reply.status == 200 ? "OK" : "Error")\r\nContent-Type: application/json\r\nContent-Length: \(reply.body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + Array(reply.body)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            sent += n
        }
    }
}

extension [UInt8] {
    fileprivate var containsHeaderEnd: Bool {
        count >= 4 && (0...(count - 4)).contains { self[$0] == 13 && self[$0 + 1] == 10 && self[$0 + 2] == 13 && self[$0 + 3] == 10 }
    }
}

/// A fake PanDA server: it replays the PanDA replies that APF's authors recorded (the docstrings in
/// /work/shared/fixtures/panda, see its SOURCES.md), converted from Python's printed form to JSON, at PanDA's API
/// paths. It can fail the first requests, answer slowly, or go down.
final class FakePandaServer: Sendable {
    static let fixtureDir = "/work/shared/fixtures/panda"
    static var available: Bool {
        FileManager.default.fileExists(atPath: fixtureDir + "/getJobStatisticsPerSite_and_WithLabel_apf-docstring.txt")
    }

    struct Behaviour: Sendable {
        var failFirst = 0
        var delay: Double = 0
        var down = false
        /// Wrap replies in the newer servers' `{"success": true, "data": …}` envelope.
        var envelope = false
        /// Serve the per-site reply (getJobStatisticsPerSite's shape) as the job statistics.
        var perSiteShape = false
    }

    let server: LocalHTTPServer
    private let behaviour: Shared<Behaviour>
    let withLabel: String
    let perSite: String
    let siteSpecs: String

    init(_ b: Behaviour = Behaviour()) throws {
        let text = try String(contentsOfFile: Self.fixtureDir + "/getJobStatisticsPerSite_and_WithLabel_apf-docstring.txt", encoding: .utf8)
        let specs = try String(contentsOfFile: Self.fixtureDir + "/getSiteSpecs_apf-docstring.txt", encoding: .utf8)
        withLabel = try PythonLiteral.json(after: "Client.getJobStatisticsWithLabel() ->", in: text)
        perSite = try PythonLiteral.json(after: "jobType='test,prod,managed,user,panda,ddm,rc_test'", in: text)
        siteSpecs = try PythonLiteral.json(after: "Client.getSiteSpecs(siteType='all')", in: specs)
        let behaviour = Shared(b)
        self.behaviour = behaviour
        let (wl, ps, ss) = (withLabel, perSite, siteSpecs)
        server = try LocalHTTPServer { path, index in
            let b = behaviour.value
            if b.down || index < b.failFirst { return .init(status: 503, body: Data("{}".utf8), delay: b.delay) }
            let body: String
            if path.hasPrefix("/server/panda/getJobStatisticsWithLabel") {
                body = b.perSiteShape ? ps : wl
            } else if path.hasPrefix("/server/panda/getSiteSpecs") {
                body = ss
            } else {
                return .init(status: 404, body: Data("{}".utf8))
            }
            let wrapped = b.envelope ? "{\"success\":true,\"message\":\"\",\"data\":\(body)}" : body
            return .init(status: 200, body: Data(wrapped.utf8), delay: b.delay)
        }
    }

    var baseURL: String { server.baseURL + "/server/panda" }
    func set(_ body: (inout Behaviour) -> Void) {
        var b = behaviour.value
        body(&b)
        behaviour.value = b
    }
    func stop() { server.stop() }
}

/// Converts a Python literal as `pprint` shows it (dicts, lists, quoted strings, numbers, None/True/False,
/// `datetime.datetime(...)`) to JSON text. Used only to replay the recorded PanDA replies.
enum PythonLiteral {
    struct Failure: Error { var message: String }

    static func json(after marker: String, in text: String) throws -> String {
        guard let m = text.range(of: marker), let brace = text[m.upperBound...].firstIndex(of: "{") else {
            throw Failure(message: "marker '\(marker)' not found")
        }
        var p = Parser(chars: Array(text[brace...].unicodeScalars))
        return try p.value()
    }

    struct Parser {
        var chars: [Unicode.Scalar]
        var i = 0

        mutating func skip() {
            while i < chars.count, chars[i].properties.isWhitespace { i += 1 }
        }

        mutating func value() throws -> String {
            skip()
            guard i < chars.count else { throw Failure(message: "unexpected end") }
            switch chars[i] {
            case "{": return try dict()
            case "[": return try list()
            case "'", "\"": return quote(try string())
            default: return try atom()
            }
        }

        mutating func dict() throws -> String {
            i += 1
            var items: [String] = []
            while true {
                skip()
                if chars[i] == "}" {
                    i += 1
                    return "{" + items.joined(separator: ",") + "}"
                }
                let key: String
                if chars[i] == "'" || chars[i] == "\"" {
                    key = try string()
                } else {
                    key = try atom()  // None as a key
                }
                skip()
                guard chars[i] == ":" else { throw Failure(message: "expected ':' at \(i)") }
                i += 1
                let v = try value()
                items.append(quote(key) + ":" + v)
                skip()
                if chars[i] == "," { i += 1 }
            }
        }

        mutating func list() throws -> String {
            i += 1
            var items: [String] = []
            while true {
                skip()
                if chars[i] == "]" {
                    i += 1
                    return "[" + items.joined(separator: ",") + "]"
                }
                items.append(try value())
                skip()
                if chars[i] == "," { i += 1 }
            }
        }

        mutating func string() throws -> String {
            let q = chars[i]
            i += 1
            var s = ""
            while chars[i] != q {
                if chars[i] == "\\" { i += 1 }
                s.unicodeScalars.append(chars[i])
                i += 1
            }
            i += 1
            return s
        }

        mutating func atom() throws -> String {
            var s = ""
            var depth = 0
            while i < chars.count {
                let c = chars[i]
                if c == "(" { depth += 1 }
                if c == ")" { depth -= 1 }
                if depth == 0, c == "," || c == "}" || c == "]" || c == ":" { break }
                s.unicodeScalars.append(c)
                i += 1
            }
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            switch t {
            case "None": return "null"
            case "True": return "true"
            case "False": return "false"
            default:
                if Double(t) != nil { return t }
                return quote(t)  // datetime.datetime(2011, 10, 18, 10, 45, 44)
            }
        }

        func quote(_ s: String) -> String {
            let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
            let text = String(decoding: data, as: UTF8.self)
            return String(text.dropFirst().dropLast())
        }
    }
}

/// A clock tests move by hand; `sleep` records the back-off requested and returns at once.
final class TestClock: Sendable {
    private let state = Mutex<(now: Date, sleeps: [Duration])>((Date(timeIntervalSince1970: 1_800_000_000), []))

    var now: Date { state.withLock { $0.now } }
    var sleeps: [Duration] { state.withLock { $0.sleeps } }
    func advance(_ seconds: Double) { state.withLock { $0.now = $0.now.addingTimeInterval(seconds) } }

    var clock: StatusClock {
        StatusClock(now: { self.now }, sleep: { d in self.state.withLock { $0.sleeps.append(d) } })
    }
}

/// A value shared between threads behind a lock.
final class Shared<T: Sendable>: Sendable {
    private let mutex: Mutex<T>
    init(_ value: T) { mutex = Mutex(value) }
    var value: T {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }
}
