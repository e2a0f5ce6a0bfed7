import Agent
import ArgumentParser
import AuthProfiles

/// Prints a check report as text (one line per step) or JSON; a failed check exits 1.
enum CheckOutput {
    static func print(_ report: CheckReport, json: Bool) throws {
        if json {
            try CLIOutput.json(report)
        } else {
            CLIOutput.line("\(report.subject.rawValue) \(report.name) (\(report.kind), tenant \(report.tenant ?? "?"))")
            for step in report.steps {
                CLIOutput.line("  \(step.ok ? "ok  " : "FAIL") \(step.name): \(step.detail)")
            }
            if let x = report.x509 { X509Text.print(x, indent: "  ") }
            CLIOutput.line(report.ok ? "check passed" : "check FAILED")
        }
        if !report.ok { throw ExitCode(1) }
    }
}

enum X509Text {
    static func print(_ s: X509Summary, indent: String) {
        let now = Date()
        var pairs: [(String, String?)] = [
            ("subject", s.subject), ("identity", s.identity), ("issuer", s.issuer),
            ("type", s.proxyType?.rawValue ?? "not a proxy"),
            ("validity", DurationText.expiry(s.chainNotAfter, now: now)),
            ("key", s.publicKey),
        ]
        for ac in s.voms {
            pairs.append(("voms", "\(ac.vo ?? "?") (\(ac.server ?? "?")): \(ac.fqans.joined(separator: " ")); AC "
                              + DurationText.expiry(ac.notAfter, now: now)))
        }
        let width = pairs.map(\.0.count).max() ?? 0
        for (k, v) in pairs {
            if let v { CLIOutput.line(indent + k.padding(toLength: width + 2, withPad: " ", startingAt: 0) + v) }
        }
    }
}

import Foundation
