// The example of docs/embedding.md, compiled here; EmbeddingExampleTests checks that the document shows exactly this
// code and runs it.
// example:begin
import Agent
import Logging
import SSHSubmit

/// Runs a factory in process until it has submitted `pilots` pilots, then stops it and returns its status.
func runEmbeddedFactory(configPaths: [String], pilots: Int) async throws -> FactoryStatus {
    // 1. A checked configuration: APF's files, plus apf-agent's keys.
    let config = ConfigLoader().load(paths: configPaths)
    guard config.isValid else { throw FactoryError(.invalidConfig, "\(config.errors)") }

    // 2. The environment: a journal (in memory here; AgentStore.open(path:) for a file), demand set by this
    //    program, and a simulated batch system instead of SSH targets (leave makeBackend out for the real drivers,
    //    and pass a TargetResolver for named targets).
    let demand = InMemoryDemandSource()
    for queue in config.queues { demand.set(queue.wmsQueue ?? queue.name, ready: pilots) }
    let environment = FactoryEnvironment(
        journal: try AgentStore.inMemory(),
        logger: Logger(label: "embedded-factory"),
        makeBackend: { plan in
            SimulatedBatchBackend(target: plan.name, tag: try! FactoryTag(config.factory.clientTag), system: plan.system)
        },
        makeDemandSource: { _ in demand })
    let factory = try Factory(config: config, environment: environment)

    // 3. Observe: every cycle, state change, health change and reload is an event.
    let events = factory.events()
    let running = Task { try await factory.run() }
    var submitted = 0
    for await event in events {
        guard case .cycle(let cycle) = event else { continue }
        print("\(cycle.queue): \(cycle.trace)")
        if case .submitted(let accepted, _, _, _) = cycle.action { submitted += accepted }
        if submitted >= pilots { break }
    }

    // 4. Stop: cycles in flight finish, then run() returns.
    factory.shutdown()
    try await running.value
    return try factory.status()
}
// example:end
