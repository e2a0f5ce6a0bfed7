import Foundation

/// Parsers for HTCondor outputs: `condor_submit -terse`, `condor_q`/`condor_history -json`, `-af:j` rows and ClassAd
/// XML (`-long -xml`). `JobStatus` goes through `StateTables.htcondor`.
public enum HTCondorParser {
    /// A job ClassAd's values (numbers, strings, booleans; `undefined` is absent).
    public typealias Ad = [String: AdValue]

    public enum AdValue: Sendable, Hashable {
        case int(Int)
        case real(Double)
        case string(String)
        case bool(Bool)
        case expression(String)

        var int: Int? {
            switch self {
            case .int(let v): return v
            case .real(let v): return Int(v)
            case .bool(let b): return b ? 1 : 0
            default: return nil
            }
        }
        var string: String? {
            switch self {
            case .string(let s), .expression(let s): return s
            case .int(let v): return String(v)
            case .real(let v): return String(v)
            case .bool(let b): return b ? "true" : "false"
            }
        }
    }

    /// `condor_submit -terse`: `123.0 - 123.49`.
    public static func parseSubmit(_ output: String) -> (cluster: UInt64, procs: ClosedRange<Int64>)? {
        for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).reversed() {
            let parts = line.split(separator: " ").filter { $0 != "-" }
            guard parts.count == 2, let a = NativeJobID(String(parts[0]), system: .htcondor),
                  let b = NativeJobID(String(parts[1]), system: .htcondor), a.job == b.job,
                  let lo = a.task, let hi = b.task, lo <= hi else { continue }
            return (a.job, lo...hi)
        }
        return nil
    }

    /// `-json` output: a JSON array of ads. Empty output means no jobs.
    public static func parseJSON(_ output: [UInt8]) throws(BatchError) -> [Ad] {
        let trimmed = output.drop { $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }
        if trimmed.isEmpty { return [] }
        guard let array = try? JSONSerialization.jsonObject(with: Data(trimmed)) as? [[String: Any]] else {
            throw BatchError(.unparsableOutput, "condor -json output is not a JSON array of objects", permanent: false)
        }
        return array.map { dict in
            var ad: Ad = [:]
            for (k, v) in dict {
                if let s = v as? String {
                    ad[k] = .string(s)
                } else if let n = v as? NSNumber {
                    // JSONSerialization hands numbers and booleans back as NSNumber; a boolean prints as true/false.
                    let text = "\(n)"
                    if text == "true" || text == "false" {
                        ad[k] = .bool(text == "true")
                    } else if !text.contains("."), !text.contains("e"), let i = Int(text) {
                        ad[k] = .int(i)
                    } else {
                        ad[k] = .real(n.doubleValue)
                    }
                }
            }
            return ad
        }
    }

    /// `-af:j A B C`: `cluster.proc` then one value per attribute, blank-separated (use only for space-free values;
    /// a longer row puts the rest in the last attribute). `undefined` is absent.
    public static func parseAutoformat(_ output: String, attributes: [String], stats: inout ParseStats) -> [Ad] {
        var ads: [Ad] = []
        for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) where !line.allSatisfy({ $0 == " " }) {
            stats.rows += 1
            let fields = line.split(separator: " ", maxSplits: attributes.count, omittingEmptySubsequences: true)
            guard fields.count == attributes.count + 1, let id = NativeJobID(String(fields[0]), system: .htcondor) else {
                stats.malformed += 1
                continue
            }
            var ad: Ad = ["ClusterId": .int(Int(id.job)), "ProcId": .int(Int(id.task ?? 0))]
            for (name, raw) in zip(attributes, fields.dropFirst()) where raw != "undefined" {
                if let i = Int(raw) { ad[name] = .int(i) } else if raw == "true" || raw == "false" { ad[name] = .bool(raw == "true") } else {
                    ad[name] = .string(String(raw))
                }
            }
            ads.append(ad)
        }
        return ads
    }

    /// ClassAd XML (`condor_q -long -xml`): `<c>` per ad, `<a n="Name"><i>1</i></a>` (i, r, s, b, e).
    public static func parseXML(_ output: [UInt8]) throws(BatchError) -> [Ad] {
        guard let root = XMLNode.parse(output) else {
            throw BatchError(.unparsableOutput, "ClassAd XML is not well-formed", permanent: false)
        }
        return root.all("c").map { c in
            var ad: Ad = [:]
            for a in c.children where a.name == "a" {
                guard let name = a.attributes["n"], let v = a.children.first else { continue }
                let text = v.text
                switch v.name {
                case "i": if let i = Int(text.trimmingCharacters(in: .whitespaces)) { ad[name] = .int(i) }
                case "r": if let r = Double(text.trimmingCharacters(in: .whitespaces)) { ad[name] = .real(r) }
                case "s": ad[name] = .string(text)
                case "b": ad[name] = .bool(v.attributes["v"] == "t")
                case "e": ad[name] = .expression(text)
                default: break
                }
            }
            return ad
        }
    }

    /// The job's ID from `ClusterId` and `ProcId`.
    public static func id(of ad: Ad) -> NativeJobID? {
        guard let c = ad["ClusterId"]?.int, c >= 0, let p = ad["ProcId"]?.int, p >= 0 else { return nil }
        return .htcondor(UInt64(c), Int64(p))
    }

    /// `JobStatus` through the table; 4 (Completed) by `ExitCode`, or failed when `ExitBySignal`; held and removed
    /// jobs carry `HoldReason` / `RemoveReason`.
    public static func status(of ad: Ad) -> JobStatus? {
        guard let js = ad["JobStatus"]?.int else { return nil }
        let mapping = StateTables.htcondor(js)
        var exit = ad["ExitCode"]?.int
        var signal: Int?
        if ad["ExitBySignal"]?.int == 1 {
            signal = ad["ExitSignal"]?.int
            exit = nil
        }
        var (state, ending) = mapping.resolve(exitCode: exit)
        if js == 4, signal != nil { state = .failed }
        let reason: String?
        switch js {
        case 5: reason = [ad["HoldReasonCode"]?.int.map { "code \($0)" }, ad["HoldReason"]?.string].compactMap { $0 }.joined(separator: ": ")
        case 3: reason = ad["RemoveReason"]?.string
        default: reason = nil
        }
        return JobStatus(state: state, nativeState: String(js), reason: reason.flatMap { $0.isEmpty ? nil : $0 }, exitCode: exit,
                         signal: signal, ending: ending)
    }

    /// The attribute that carries a pilot's client ID in its job ad.
    public static let clientIDAttribute = "APFClientID"
    /// The attribute that carries the factory tag (listings are constrained on it).
    public static let tagAttribute = "APFFactoryTag"

    /// Records for ads of `tag` (all when nil).
    public static func records(_ ads: [Ad], tag: FactoryTag?, source: JobRecord.Source, stats: inout ParseStats) -> [NativeJobID: JobRecord] {
        var out: [NativeJobID: JobRecord] = [:]
        for ad in ads {
            stats.rows += 1
            guard let id = id(of: ad), let status = status(of: ad) else { stats.malformed += 1; continue }
            let clientID = ad[clientIDAttribute]?.string.flatMap(ClientID.init)
            if let tag, clientID?.tag != tag { stats.foreign += 1; continue }
            out[id] = JobRecord(id: id, clientID: clientID, status: status, source: source)
        }
        return out
    }
}
