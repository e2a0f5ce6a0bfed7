import Foundation
import SSHSubmit
import Testing

struct ShellQuoteTests {
    @Test(arguments: [
        ("hostname", "hostname"),
        ("", "''"),
        ("a b", "'a b'"),
        ("it's", "'it'\\''s'"),
        ("$HOME", "'$HOME'"),
        ("x=y", "'x=y'"),
        ("~", "'~'"),
        ("/usr/bin/sbatch", "/usr/bin/sbatch"),
        ("--parsable", "--parsable"),
    ])
    func quotesOnlyWhatNeedsIt(input: String, expected: String) {
        #expect(ShellQuote.quote(input) == expected)
    }

    @Test func rendersEnvironmentAndDirectory() throws {
        let line = try ShellQuote.render(["sbatch", "--parsable", "job script.sh"],
                                         environment: [("APF_QUEUE", "q 1"), ("X", "it's")], workingDirectory: "/tmp/a b")
        #expect(line == "cd -- '/tmp/a b' && APF_QUEUE='q 1' X='it'\\''s' sbatch --parsable 'job script.sh'")
    }

    @Test func refusesWhatCannotArrive() {
        #expect(throws: SSHError(.invalidArgument, "", retryable: false)) { try ShellQuote.render([]) }
        #expect(throws: SSHError(.invalidArgument, "", retryable: false)) { try ShellQuote.render(["a\u{0}b"]) }
        #expect(throws: SSHError(.invalidArgument, "", retryable: false)) {
            try ShellQuote.render(["true"], environment: [("1BAD", "x")])
        }
        #expect(throws: SSHError(.invalidArgument, "", retryable: false)) {
            try ShellQuote.render(["true"], environment: [("A;rm", "x")])
        }
    }

    /// The same property as the remote test, against the local /bin/sh: what `sh -c` sees is exactly the argv.
    @Test func localShellReceivesEveryByte() throws {
        var rng = SplitMix64(state: 0xA9F_2026)
        for _ in 0..<200 {
            let args = (0..<Int.random(in: 1...6, using: &rng)).map { _ in randomArgument(&rng) }
            let line = try ShellQuote.render(["printf", "%s\\0"] + args)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", line]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let got = data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
            #expect(got == args, "rendered: \(line)")
        }
    }
}
