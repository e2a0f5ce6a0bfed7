import Foundation
import SwiftASN1

/// Small helpers for walking DER trees whose types swift-certificates does not model (proxy and VOMS extensions).
extension ASN1Node {
    var children: [ASN1Node] {
        if case .constructed(let c) = content { return Array(c) }
        return []
    }

    var primitiveBytes: ArraySlice<UInt8>? {
        if case .primitive(let b) = content { return b }
        return nil
    }

    func isContext(_ tag: UInt) -> Bool {
        identifier.tagClass == .contextSpecific && identifier.tagNumber == tag
    }
}

enum ASN1Date {
    /// GeneralizedTime as a Date (UTC).
    static func date(_ t: GeneralizedTime) -> Date {
        var c = DateComponents()
        c.calendar = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")
        c.year = t.year
        c.month = t.month
        c.day = t.day
        c.hour = t.hours
        c.minute = t.minutes
        c.second = t.seconds
        return c.date ?? Date(timeIntervalSince1970: 0)
    }
}
