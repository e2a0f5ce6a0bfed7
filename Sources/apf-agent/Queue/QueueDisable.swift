import ArgumentParser

extension QueueCommand {
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "disable", abstract: "Switch a queue off: no new cycles (pilots already submitted are still followed).")

        @OptionGroup var options: DaemonOptions
        @Argument(help: "Queue name.") var queue: String
        @Option(help: "Why (kept in the journal).") var note: String?

        func run() async throws { try QueueCommand.setSwitch(options, queue: queue, enabled: false, note: note) }
    }
}
