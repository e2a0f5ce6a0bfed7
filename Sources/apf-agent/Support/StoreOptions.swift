import Agent
import ArgumentParser
import AuthProfiles
import Logging
import SSHSubmit

/// Options every store verb shares.
struct StoreOptions: ParsableArguments {
    @Option(help: "Installation home (default: $APF_HOME, else /var/lib/apf as root, else ~/.apf).")
    var home: String?

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical (default: $APF_LOG_LEVEL or error; failures are reported by the command itself).")
    var logLevel: String?

    var store: ProfileStore { ProfileStore(home: APFHome.resolve(explicit: home)) }

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    var logger: Logger {
        var l = Logger(label: "apf-agent")
        let env = ProcessInfo.processInfo.environment["APF_LOG_LEVEL"]
        l.logLevel = Logger.Level(rawValue: logLevel ?? env ?? "error") ?? .error
        return l
    }

    func resolver() -> TargetResolver {
        TargetResolver(store: store, pools: SSHPools(logger: logger))
    }
}

import Foundation
