import Agent
import Foundation
import Testing

/// docs/embedding.md's example is this target's EmbeddingExample.swift (so it compiles), and it works.
@Suite(.timeLimit(.minutes(1)))
struct EmbeddingExampleTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func between(_ text: String, _ begin: String, _ end: String) -> String? {
        guard let a = text.range(of: begin), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else { return nil }
        return String(text[a.upperBound..<b.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func documentShowsTheCompiledExample() throws {
        let doc = try String(contentsOf: Self.repo.appendingPathComponent("docs/embedding.md"), encoding: .utf8)
        let code = try String(contentsOf: Self.repo.appendingPathComponent("Tests/AgentTests/Runtime/EmbeddingExample.swift"),
                              encoding: .utf8)
        let shown = try #require(Self.between(doc, "<!-- example:begin -->\n```swift", "```\n<!-- example:end -->"))
        let compiled = try #require(Self.between(code, "// example:begin", "// example:end"))
        #expect(shown == compiled, "docs/embedding.md must show Tests/AgentTests/Runtime/EmbeddingExample.swift verbatim")
    }

    @Test func exampleRunsAFactory() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apf-embed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "#!/bin/sh\nexec sleep 60\n".write(to: dir.appendingPathComponent("pilot.sh"), atomically: true, encoding: .utf8)
        try """
            [ANALY_TEST]
            enabled = True
            wmsqueue = ANALY_TEST
            wmsstatusplugin = Command
            wmsstatus.command.run = /bin/true
            schedplugin = Ready, MaxPerCycle
            sched.maxpercycle.maximum = 5
            batchsubmitplugin = Local
            batchsubmit.local.batch = slurm
            executable = \(dir.path)/pilot.sh
            apfqueue.sleep = 1

            """.write(to: dir.appendingPathComponent("queues.conf"), atomically: true, encoding: .utf8)
        let status = try await runEmbeddedFactory(configPaths: [dir.appendingPathComponent("queues.conf").path], pilots: 12)
        let q = try #require(status.queues.first { $0.name == "ANALY_TEST" })
        #expect(q.pending + q.running >= 12)
        #expect(q.lastMessage?.hasPrefix("Ready:in=0,activated=12") == true)
    }
}
