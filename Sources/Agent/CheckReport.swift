public import AuthProfiles
import Foundation

/// The result of `profile check` or `target check`: each step with its outcome, plus what was learned.
public struct CheckReport: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public var name: String
        public var ok: Bool
        public var detail: String
    }

    public enum Subject: String, Codable, Sendable { case profile, target }

    public var subject: Subject
    public var name: String
    public var tenant: String?
    public var kind: String
    public var steps: [Step] = []
    public var x509: X509Summary?
    public var sshFingerprint: String?
    public var ec2Regions: [String]?
    public var keystone: KeystoneClient.TokenInfo?
    public var batch: BatchProbe?

    public init(subject: Subject, name: String, tenant: String?, kind: String) {
        self.subject = subject
        self.name = name
        self.tenant = tenant
        self.kind = kind
    }

    public var ok: Bool { !steps.isEmpty && steps.allSatisfy(\.ok) }

    mutating func pass(_ name: String, _ detail: String) { steps.append(Step(name: name, ok: true, detail: detail)) }
    mutating func fail(_ name: String, _ detail: String) { steps.append(Step(name: name, ok: false, detail: detail)) }

    private enum CodingKeys: String, CodingKey {
        case subject, name, tenant, kind, ok, steps, x509, sshFingerprint, ec2Regions, keystone, batch
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(subject, forKey: .subject)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(tenant, forKey: .tenant)
        try c.encode(kind, forKey: .kind)
        try c.encode(ok, forKey: .ok)
        try c.encode(steps, forKey: .steps)
        try c.encodeIfPresent(x509, forKey: .x509)
        try c.encodeIfPresent(sshFingerprint, forKey: .sshFingerprint)
        try c.encodeIfPresent(ec2Regions, forKey: .ec2Regions)
        try c.encodeIfPresent(keystone, forKey: .keystone)
        try c.encodeIfPresent(batch, forKey: .batch)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        subject = try c.decode(Subject.self, forKey: .subject)
        name = try c.decode(String.self, forKey: .name)
        tenant = try c.decodeIfPresent(String.self, forKey: .tenant)
        kind = try c.decode(String.self, forKey: .kind)
        steps = try c.decode([Step].self, forKey: .steps)
        x509 = try c.decodeIfPresent(X509Summary.self, forKey: .x509)
        sshFingerprint = try c.decodeIfPresent(String.self, forKey: .sshFingerprint)
        ec2Regions = try c.decodeIfPresent([String].self, forKey: .ec2Regions)
        keystone = try c.decodeIfPresent(KeystoneClient.TokenInfo.self, forKey: .keystone)
        batch = try c.decodeIfPresent(BatchProbe.self, forKey: .batch)
    }
}

/// Batch commands found on a target.
public struct BatchProbe: Codable, Sendable, Equatable {
    /// Command name → path, for every probed command that exists.
    public var found: [String: String]
    /// Commands the target's batch system needs that are missing.
    public var missing: [String]
    /// Tool → first line of its version output.
    public var versions: [String: String]
}
