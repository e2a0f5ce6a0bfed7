import ArgumentParser

extension QueueCommand {
    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enable", abstract: "Switch a queue on (persists; overrides the file's enabled; tells a running daemon).")

        @OptionGroup var options: DaemonOptions
        @Argument(help: "Queue name.") var queue: String
        @Option(help: "Why (kept in the journal).") var note: String?

        func run() async throws { try QueueCommand.setSwitch(options, queue: queue, enabled: true, note: note) }
    }
}
