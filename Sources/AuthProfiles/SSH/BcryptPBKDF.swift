import Crypto

/// OpenSSH's key derivation for encrypted private keys (`kdfname "bcrypt"`): bcrypt_pbkdf from OpenBSD, a PBKDF2
/// variant whose PRF is a Blowfish-based hash of SHA-512 digests. Output bytes are interleaved across blocks.
enum BcryptPBKDF {
    static func derive(password: [UInt8], salt: [UInt8], count keyLength: Int, rounds: Int) -> [UInt8] {
        precondition(rounds >= 1 && !password.isEmpty && !salt.isEmpty && keyLength > 0 && keyLength <= 1024)
        let hashSize = 32
        let stride = (keyLength + hashSize - 1) / hashSize
        var amount = (keyLength + stride - 1) / stride
        let sha2pass = Array(SHA512.hash(data: password))
        var key = [UInt8](repeating: 0, count: keyLength)
        var remaining = keyLength
        var count: UInt32 = 1
        let state = BlowfishState()
        while remaining > 0 {
            let countSalt: [UInt8] = [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF),
                                      UInt8(count & 0xFF)]
            var sha2salt = Array(SHA512.hash(data: salt + countSalt))
            var tmp = state.bcryptHash(sha2pass: sha2pass, sha2salt: sha2salt)
            var out = tmp
            if rounds > 1 {
                for _ in 1..<rounds {
                    sha2salt = Array(SHA512.hash(data: tmp))
                    tmp = state.bcryptHash(sha2pass: sha2pass, sha2salt: sha2salt)
                    for j in 0..<hashSize { out[j] ^= tmp[j] }
                }
            }
            amount = min(amount, remaining)
            var i = 0
            while i < amount {
                let dest = i * stride + Int(count - 1)
                if dest >= keyLength { break }
                key[dest] = out[i]
                i += 1
            }
            remaining -= i
            count += 1
        }
        return key
    }
}

/// Blowfish state (P-array followed by the four S-boxes) in one buffer, for the eksblowfish key schedule.
private final class BlowfishState {
    let p: UnsafeMutablePointer<UInt32>   // 18 words
    let s: UnsafeMutablePointer<UInt32>   // 4 × 256 words

    init() {
        p = .allocate(capacity: 18)
        s = .allocate(capacity: 1024)
    }

    deinit {
        p.deallocate()
        s.deallocate()
    }

    func reset() {
        blowfishInitialP.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: 18) }
        blowfishInitialS.withUnsafeBufferPointer { s.initialize(from: $0.baseAddress!, count: 1024) }
    }

    @inline(__always)
    private func f(_ x: UInt32) -> UInt32 {
        ((s[Int(x >> 24)] &+ s[0x100 + Int((x >> 16) & 0xFF)]) ^ s[0x200 + Int((x >> 8) & 0xFF)])
            &+ s[0x300 + Int(x & 0xFF)]
    }

    @inline(__always)
    private func encipher(_ xl: inout UInt32, _ xr: inout UInt32) {
        var l = xl ^ p[0]
        var r = xr
        var i = 1
        while i <= 16 {
            r ^= f(l) ^ p[i]
            l ^= f(r) ^ p[i + 1]
            i += 2
        }
        xl = r ^ p[17]
        xr = l
    }

    private static func streamToWord(_ data: UnsafeBufferPointer<UInt8>, _ j: inout Int) -> UInt32 {
        var temp: UInt32 = 0
        for _ in 0..<4 {
            if j >= data.count { j = 0 }
            temp = (temp << 8) | UInt32(data[j])
            j += 1
        }
        return temp
    }

    private func expand0(_ key: UnsafeBufferPointer<UInt8>) {
        var j = 0
        for i in 0..<18 { p[i] ^= Self.streamToWord(key, &j) }
        var l: UInt32 = 0, r: UInt32 = 0
        var i = 0
        while i < 18 {
            encipher(&l, &r)
            p[i] = l; p[i + 1] = r
            i += 2
        }
        i = 0
        while i < 1024 {
            encipher(&l, &r)
            s[i] = l; s[i + 1] = r
            i += 2
        }
    }

    private func expand(data: UnsafeBufferPointer<UInt8>, key: UnsafeBufferPointer<UInt8>) {
        var j = 0
        for i in 0..<18 { p[i] ^= Self.streamToWord(key, &j) }
        j = 0
        var l: UInt32 = 0, r: UInt32 = 0
        var i = 0
        while i < 18 {
            l ^= Self.streamToWord(data, &j)
            r ^= Self.streamToWord(data, &j)
            encipher(&l, &r)
            p[i] = l; p[i + 1] = r
            i += 2
        }
        i = 0
        while i < 1024 {
            l ^= Self.streamToWord(data, &j)
            r ^= Self.streamToWord(data, &j)
            encipher(&l, &r)
            s[i] = l; s[i + 1] = r
            i += 2
        }
    }

    /// OpenBSD's bcrypt_hash: eksblowfish setup with salt and password, then 64 encryptions of a fixed text.
    func bcryptHash(sha2pass: [UInt8], sha2salt: [UInt8]) -> [UInt8] {
        reset()
        sha2pass.withUnsafeBufferPointer { pass in
            sha2salt.withUnsafeBufferPointer { salt in
                expand(data: salt, key: pass)
                for _ in 0..<64 {
                    expand0(salt)
                    expand0(pass)
                }
            }
        }
        let text = Array("OxychromaticBlowfishSwatDynamite".utf8)
        var cdata = [UInt32](repeating: 0, count: 8)
        text.withUnsafeBufferPointer { t in
            var j = 0
            for i in 0..<8 { cdata[i] = Self.streamToWord(t, &j) }
        }
        for _ in 0..<64 {
            var b = 0
            while b < 8 {
                var l = cdata[b], r = cdata[b + 1]
                encipher(&l, &r)
                cdata[b] = l
                cdata[b + 1] = r
                b += 2
            }
        }
        var out = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 {
            out[4 * i + 3] = UInt8((cdata[i] >> 24) & 0xFF)
            out[4 * i + 2] = UInt8((cdata[i] >> 16) & 0xFF)
            out[4 * i + 1] = UInt8((cdata[i] >> 8) & 0xFF)
            out[4 * i + 0] = UInt8(cdata[i] & 0xFF)
        }
        return out
    }
}
