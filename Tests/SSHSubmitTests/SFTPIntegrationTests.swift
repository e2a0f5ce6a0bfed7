import Crypto
import Foundation
import SSHSubmit
import Testing

@Suite(.enabled(if: Testbed.enabled, "needs the testbed (APF_INTEGRATION=1, make test)"))
struct SFTPIntegrationTests {
    let tb: Testbed
    let pool: SSHPool
    let dir: String

    init() throws {
        tb = try Testbed.load()
        pool = try tb.pool(tb.main)
        dir = "/tmp/apf-sftp-test-\(UUID().uuidString)"
    }

    private func bytes(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }
    private func hex(_ d: [UInt8]) -> String { SHA256.hash(data: d).map { String(format: "%02x", $0) }.joined() }

    @Test(.timeLimit(.minutes(1))) func mkdirStatUploadDownload() async throws {
        try await pool.withConnection { c throws(SSHError) in
            #expect(try await c.stat("\(dir)/nope") == nil)
            try await c.createDirectories("\(dir)/a/b/c", mode: 0o750)
            try await c.createDirectories("\(dir)/a/b/c")  // idempotent
            let info = try await c.stat("\(dir)/a/b/c")
            #expect(info?.isDirectory == true)

            let data = bytes(5 << 20, seed: 1)
            try await c.upload(data, to: "\(dir)/a/file.bin", mode: 0o640)
            let st = try await c.stat("\(dir)/a/file.bin")
            #expect(st?.size == UInt64(data.count))
            #expect(st?.permissions == 0o640)
            #expect(try await c.download("\(dir)/a/file.bin") == data)
            // Overwrite in place (SFTP v3 cannot rename over a file; the fallback keeps it atomic).
            let newer = bytes(1000, seed: 2)
            try await c.upload(newer, to: "\(dir)/a/file.bin", mode: 0o600)
            #expect(try await c.download("\(dir)/a/file.bin") == newer)
            #expect(try await c.stat("\(dir)/a/file.bin")?.permissions == 0o600)
            // No temporary files are left behind.
            let ls = try await c.exec("ls", "-A", "\(dir)/a")
            #expect(ls.stdoutText == "b\nfile.bin\n")
            await #expect(throws: SSHError(.outputTooLarge, "", retryable: false)) {
                try await c.download("\(dir)/a/file.bin", maxBytes: 10)
            }
        }
        _ = try await pool.exec("rm", "-rf", dir)
    }

    /// Readers never see a half-written file: while one content replaces another again and again, every read
    /// hashes to one of the two.
    @Test(.timeLimit(.minutes(2))) func uploadIsAtomicForConcurrentReaders() async throws {
        let a = bytes(2 << 20, seed: 3), b = bytes(2 << 20, seed: 4)
        let path = "\(dir)/atomic.bin"
        try await pool.withConnection { c throws(SSHError) in try await c.createDirectories(dir) }
        try await pool.withConnection { c throws(SSHError) in try await c.upload(a, to: path) }
        let pool = self.pool
        let reader = Task {
            var seen: [String] = []
            while !Task.isCancelled {
                guard let r = try? await pool.exec("sha256sum", path) else { break }
                seen.append(String(r.stdoutText.prefix(64)))
            }
            return seen
        }
        for i in 0..<10 {
            try await pool.withConnection { c throws(SSHError) in try await c.upload(i % 2 == 0 ? b : a, to: path) }
        }
        reader.cancel()
        let seen = await reader.value
        #expect(!seen.isEmpty)
        #expect(Set(seen).isSubset(of: [hex(a), hex(b)]), "a reader saw a partial file")
        _ = try await pool.exec("rm", "-rf", dir)
    }

    @Test(.timeLimit(.minutes(1))) func contentAddressedUploadIsIdempotent() async throws {
        let helper = Array("#!/bin/sh\necho helper v1\n".utf8)
        let first = try await pool.withConnection { c throws(SSHError) in
            try await c.uploadContentAddressed(helper, directory: "\(dir)/bin", prefix: "helper-")
        }
        #expect(first.uploaded)
        #expect(first.path.hasPrefix("\(dir)/bin/helper-"))
        let second = try await pool.withConnection { c throws(SSHError) in
            try await c.uploadContentAddressed(helper, directory: "\(dir)/bin", prefix: "helper-")
        }
        #expect(!second.uploaded)
        #expect(second.path == first.path)
        #expect(try await pool.exec(first.path).stdoutText == "helper v1\n")
        _ = try await pool.exec("rm", "-rf", dir)
    }
}
