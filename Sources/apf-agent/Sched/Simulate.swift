import Agent
import ArgumentParser
import Foundation

extension SchedCommand {
    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "simulate",
            abstract: "Run a queue's real scheduler chain on given numbers (APF's apf-simulate-scheds).",
            discussion: """
                The file may hold a whole queues.conf or only the queue's schedplugin and sched.* keys. Prints each \
                plugin's output in order and the final number (negative = retire). Exit status 2 when the chain \
                cannot be built.
                """)

        @Option(help: "A queues file (or configuration directory) holding the queue; file:// URLs are accepted.")
        var config: String
        @Option(help: "The queue (section) to run; optional when the file has one queue.") var queue: String?
        @Option(help: "Jobs ready in the WMS (PanDA activated).") var activated: Int = 0
        @Option(help: "Pilots pending in the batch system.") var pending: Int = 0
        @Option(help: "Pilots running in the batch system.") var running: Int = 0
        @Option(help: "WMS site status: online, offline or test.") var status: String = "online"
        @Option(help: "Pending+running pilots of the whole factory, for MaxPerFactory (default: this queue's).")
        var factoryTotal: Int?
        @Flag(help: "Print {\"steps\":[{\"plugin\",\"out\",\"msg\"}],\"final\":N} as JSON.") var json = false

        func validate() throws {
            guard ["online", "offline", "test"].contains(status) else {
                throw ValidationError("--status must be online, offline or test (got '\(status)').")
            }
            if activated < 0 || pending < 0 || running < 0 {
                throw ValidationError("--activated, --pending and --running cannot be negative.")
            }
        }

        func run() async throws {
            let loaded = ConfigLoader().loadQueues(paths: [config])
            let facts = CycleFacts.simulated(
                activated: activated, pending: pending, running: running, status: SiteStatus(status),
                factoryTotal: factoryTotal)
            let result: ChainSimulator.Run
            do {
                result = try ChainSimulator.run(loaded, queue: queue, facts: facts)
            } catch {
                FileHandle.standardError.write(Data((error.description + "\n").utf8))
                throw ExitCode(2)
            }
            print(json ? ChainSimulator.json(result).rendered() : ChainSimulator.text(result))
        }
    }
}
