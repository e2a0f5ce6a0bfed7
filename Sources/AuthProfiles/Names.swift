/// Names of tenants, profiles and targets: they become file names in the store, so they are restricted to
/// letters, digits, `.`, `_` and `-`, start with a letter or digit, and are at most 64 characters.
public enum Names {
    public static func validate(_ name: String, what: String) throws(AuthError) {
        let bytes = Array(name.utf8)
        func ok(_ b: UInt8, first: Bool) -> Bool {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return !first
            default:
                return false
            }
        }
        guard !bytes.isEmpty, bytes.count <= 64, ok(bytes[0], first: true),
              bytes.dropFirst().allSatisfy({ ok($0, first: false) })
        else {
            throw .input(.badName, "invalid \(what) name '\(name.prefix(80))': use 1-64 letters, digits, '.', '_' or "
                            + "'-', starting with a letter or digit (e.g. 'atlas-ssh')")
        }
    }
}
