/// The pilot factory: configuration, queues, scheduler chain, journal and daemon (filled by the agent-core work).
public enum APFAgent {
    public static let version = "0.1.0"
}
