import Foundation
import TestSupport
import Glibc

/// A FAKE Keystone v3 (no real Keystone v3 can run on the test machine: mimic, the only local OpenStack, has v2.0
/// only). It answers `POST /v3/auth/tokens` like Keystone's API reference for application-credential
/// authentication: 201 with `X-Subject-Token` and the documented token body when the credential id and secret
/// match, 401 with Keystone's error body when not, 404 elsewhere. One thread, one request per connection.
final class FakeKeystoneV3: @unchecked Sendable {
    let credentialID: String
    let secret: String
    private(set) var port: Int = 0
    private var fd: Int32 = -1
    private let lock = NSLock()
    private var _requests: [String] = []
    var requests: [String] { lock.lock(); defer { lock.unlock() }; return _requests }

    init(credentialID: String, secret: String) throws {
        self.credentialID = credentialID
        self.secret = secret
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0, listen(fd, 16) == 0 else { throw TestFailure("fake keystone: bind/listen failed") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                self.serve(c)
                close(c)
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    var authURL: String { "http://127.0.0.1:\(port)/v3" }

    private func serve(_ c: Int32) {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 8192)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let n = read(c, &buf, buf.count)
            if n <= 0 { break }
            data += buf[0..<n]
            if headerEnd == nil, let r = findHeaderEnd(data) {
                headerEnd = r
                let head = String(decoding: data[0..<r], as: UTF8.self)
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    contentLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let h = headerEnd, data.count >= h + 4 + contentLength { break }
        }
        guard let h = headerEnd else { return }
        let head = String(decoding: data[0..<h], as: UTF8.self)
        let body = Data(data[(h + 4)...])
        lock.lock(); _requests.append(head); lock.unlock()
        let requestLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
        let response: String
        if requestLine.hasPrefix("POST /v3/auth/tokens ") {
            let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            let cred = ((json?["auth"] as? [String: Any])?["identity"] as? [String: Any])?["application_credential"]
                as? [String: Any]
            if cred?["id"] as? String == credentialID, cred?["secret"] as? String == secret {
                let b = Self.tokenBody(expires: Self.iso(Date().addingTimeInterval(3600)))
                response = "HTTP/1.1 201 Created\r\nX-Subject-Token: gAAAAABfake-token\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(b.utf8.count)\r\nConnection: close\r\n\r\n" + b
            } else {
                let b = #"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#
                response = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(b.utf8.count)\r\nConnection: close\r\n\r\n" + b
            }
        } else {
            let b = #"{"error": {"code": 404, "message": "The resource could not be found.", "title": "Not Found"}}"#
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: \(b.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + b
        }
        let bytes = Array(response.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
    }

    private func findHeaderEnd(_ d: [UInt8]) -> Int? {
        guard d.count >= 4 else { return nil }
        for i in 0...(d.count - 4) where d[i] == 13 && d[i + 1] == 10 && d[i + 2] == 13 && d[i + 3] == 10 { return i }
        return nil
    }

    static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    /// The token document from Keystone's API reference (application credential method), with a compute endpoint.
    static func tokenBody(expires: String) -> String {
        """
        {"token": {"is_domain": false, "methods": ["application_credential"],
          "roles": [{"id": "df8b8e4e1ef94e1ca3b1dd2ec4dcdc52", "name": "member"}],
          "expires_at": "\(expires)",
          "project": {"domain": {"id": "default", "name": "Default"}, "id": "3b28e9b0f43a4aa8b57e1f0bbb0bd0e9",
                      "name": "apf-project"},
          "catalog": [
            {"endpoints": [{"region_id": "RegionOne", "url": "http://example.com/identity", "region": "RegionOne",
                            "interface": "public", "id": "5b8c1f9d6d0b4e2e9d1b1e0c5a0b5d6e"}],
             "type": "identity", "id": "1f6cfeb3a0b74b6a8b1b4d8d5e1f2a3b", "name": "keystone"},
            {"endpoints": [{"region_id": "RegionOne", "url": "http://example.com/compute/v2.1", "region": "RegionOne",
                            "interface": "public", "id": "6c9d2e0a7e1c4f3fa0e2c2f1b6c1e7f8"}],
             "type": "compute", "id": "2a7dfec4b1c84c7b9c2c5e9e6f3a4b5c", "name": "nova"}],
          "application_credential": {"id": "aa4541d9-0bc0-44f5-b02d-a9d922df7cbd", "restricted": true,
                                     "name": "apf-agent"},
          "user": {"password_expires_at": null, "domain": {"id": "default", "name": "Default"},
                   "id": "fd786d56402c4d1691372e7dee0d00b5", "name": "demo"},
          "audit_ids": ["9JpV8OihS6mpA0Yr1O5Vkg"], "issued_at": "\(iso(Date()))"}}
        """
    }
}
