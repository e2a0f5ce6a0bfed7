import Agent
import Foundation
import Testing

/// Paths of the fixtures bundled with the test target (Tests/AgentTests/Fixtures, see Fixtures/SOURCES.md).
enum Fixture {
    static let root: String = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path

    static func path(_ relative: String) -> String { root + "/" + relative }
}

/// A home directory for `~` expansion that does not depend on the machine.
let testExpander = HomeExpander(
    home: { "/home/tester" }, userHome: { $0 == "apftest" ? "/home/apftest" : nil })

/// Loads in-memory files (no I/O): paths → contents.
func loadMemory(_ files: [String: String], paths: [String]? = nil) -> AgentConfig {
    ConfigLoader(files: .memory(files), expander: testExpander).load(paths: paths ?? files.keys.sorted())
}

func loadFixture(_ paths: String...) -> AgentConfig {
    ConfigLoader(expander: testExpander).load(paths: paths.map(Fixture.path))
}

extension AgentConfig {
    func diagnostics(_ code: ConfigDiagnostic.Code) -> [ConfigDiagnostic] { diagnostics.filter { $0.code == code } }
}

/// The built `apf-agent` executable next to the test bundle, when the build made it.
enum BuiltCLI {
    static let path: String = {
        var dir = Bundle.module.bundleURL.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("apf-agent").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ""
    }()

    static var available: Bool { !path.isEmpty }

    /// Runs the CLI; returns exit status, stdout and stderr.
    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
