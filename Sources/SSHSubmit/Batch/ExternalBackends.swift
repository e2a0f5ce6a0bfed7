// Constructors for `BatchBackend` implementations outside this module (the agent's `SimulatedBatchBackend`, an
// embedder's own driver): drivers here build these values with their memberwise initialisers.

extension PreparedQueue {
    /// A prepared queue built outside a driver, for backends that stage nothing over SSH.
    public static func staged(spec: QueueSpec, workDirectory: String, logDirectory: String, launcherPath: String,
                              payloadPaths: [String], target: String) -> PreparedQueue {
        PreparedQueue(spec: spec, workDirectory: workDirectory, logDirectory: logDirectory, launcherPath: launcherPath,
                      payloadPaths: payloadPaths, target: target)
    }
}

extension SubmitResult {
    /// One pilot's submit outcome.
    public init(_ clientID: ClientID, _ outcome: SubmitOutcome) {
        self.init(clientID: clientID, outcome: outcome)
    }
}
