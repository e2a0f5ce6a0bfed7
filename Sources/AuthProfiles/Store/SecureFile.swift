import Foundation
import Glibc
// `struct stat` is attributed to whichever Clang module first included <sys/stat.h>: CDispatch in debug builds,
// CoreFoundation in release (whole-module) builds. MemberImportVisibility wants that module imported, so both are.
#if canImport(CoreFoundation) && canImport(CDispatch)
import CDispatch
import CoreFoundation
#endif

/// File primitives for the credential store: private directories (0700), atomic writes (temporary file in the same
/// directory, mode 0600, fsync, rename, fsync of the directory) and reads that refuse files others can read, as
/// OpenSSH does for private keys.
public enum SecureFile {
    /// Creates `path` (and missing parents) with mode 0700, or checks that an existing directory is private.
    public static func ensurePrivateDirectory(_ path: String) throws(AuthError) {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else {
                throw AuthError(.storeIO, "\(path) exists and is not a directory; move it away or choose another "
                                    + "home (--home or APF_HOME)")
            }
            try checkPrivate(path, st, what: "directory", fix: "chmod 700")
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, !FileManager.default.fileExists(atPath: parent) {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw AuthError(.storeIO, "cannot create \(parent): \(error.localizedDescription)")
            }
        }
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw AuthError(.storeIO, "cannot create directory \(path): \(errnoText())")
        }
        _ = chmod(path, 0o700)
    }

    static func checkPrivate(_ path: String, _ st: stat, what: String, fix: String) throws(AuthError) {
        if st.st_uid != geteuid() {
            throw AuthError(.permissions, "\(what) \(path) is owned by uid \(st.st_uid), not by this user "
                                + "(uid \(geteuid())): credentials must belong to the user that runs apf-agent")
        }
        let mode = st.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw AuthError(.permissions, "permissions \(octal(mode)) on \(what) \(path) are too open: it must not be "
                                + "accessible by group or others. Fix: \(fix) '\(path)'")
        }
    }

    /// Refuses an input file (a key or proxy to import) that group or others can read, like ssh does.
    public static func requireNotGroupOrWorldReadable(_ path: String, what: String) throws(AuthError) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw .input(.unreadable, "cannot read \(what) \(path): \(errnoText())")
        }
        let mode = st.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw .input(.permissions, "\(what) \(path) has permissions \(octal(mode)): a private key must not be "
                             + "readable by group or others. Fix: chmod 600 '\(path)', then run the command again")
        }
    }

    /// Reads a file the user named on the command line (no permission policy; see `requireNotGroupOrWorldReadable`).
    public static func readInput(_ path: String, what: String, maxBytes: Int = 1 << 20) throws(AuthError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .input(.unreadable, "cannot read \(what) \(path): \(errnoText())") }
        defer { close(fd) }
        return try readAll(fd, path: path, maxBytes: maxBytes, badInput: true)
    }

    /// Reads a secret from the store: the file must be a regular file owned by this user with no group/other access.
    public static func readPrivate(_ path: String, maxBytes: Int = 1 << 20) throws(AuthError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { throw AuthError(.notFound, "secret file \(path) is missing") }
            throw AuthError(.unreadable, "cannot read \(path): \(errnoText())")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw AuthError(.unreadable, "\(path) is not a regular file")
        }
        try checkPrivate(path, st, what: "secret file", fix: "chmod 600")
        return try readAll(fd, path: path, maxBytes: maxBytes, badInput: false)
    }

    private static func readAll(_ fd: Int32, path: String, maxBytes: Int, badInput: Bool) throws(AuthError) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AuthError(.unreadable, "cannot read \(path): \(errnoText())", badInput: badInput)
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > maxBytes {
                throw AuthError(.unreadable, "\(path) is larger than \(maxBytes) bytes; is it the right file?",
                                badInput: badInput)
            }
        }
        return out
    }

    /// Writes `bytes` to `path` atomically with `mode`: readers see the old file or the new one, never a part.
    public static func writeAtomic(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600) throws(AuthError) {
        let temp = try writeTemp(near: path, bytes, mode: mode)
        guard rename(temp, path) == 0 else {
            let e = errnoText()
            unlink(temp)
            throw AuthError(.storeIO, "cannot rename \(temp) to \(path): \(e)")
        }
        syncDirectory(of: path)
    }

    /// Creates `path` with `bytes` only if it does not exist yet (atomically: no reader sees a partial file, and of
    /// two concurrent creators exactly one wins). Returns false when it already existed.
    public static func createExclusive(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600) throws(AuthError) -> Bool {
        let temp = try writeTemp(near: path, bytes, mode: mode)
        defer { unlink(temp) }
        if link(temp, path) != 0 {
            if errno == EEXIST { return false }
            throw AuthError(.storeIO, "cannot create \(path): \(errnoText())")
        }
        syncDirectory(of: path)
        return true
    }

    private static func writeTemp(near path: String, _ bytes: [UInt8], mode: UInt32) throws(AuthError) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let temp = "\(dir)/.\(base).tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw AuthError(.storeIO, "cannot create \(temp): \(errnoText())") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temp) }
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AuthError(.storeIO, "cannot write \(temp): \(errnoText())")
            }
            offset += n
        }
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            throw AuthError(.storeIO, "cannot finish \(temp): \(errnoText())")
        }
        ok = true
        return temp
    }

    /// fsync of the directory holding `path`, so a rename survives a crash.
    public static func syncDirectory(of path: String) {
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    public static func syncDirectory(_ dir: String) {
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Removes a directory tree (used for profile directories, after they were renamed out of the way).
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func octal(_ mode: mode_t) -> String { "0" + String(mode, radix: 8) }
    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// An exclusive advisory lock on a file (flock), held for the duration of a store mutation.
final class FileLock {
    private let fd: Int32

    init(path: String) throws(AuthError) {
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuthError(.storeIO, "cannot open lock file \(path): \(SecureFile.errnoText())") }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = SecureFile.errnoText()
            close(fd)
            throw AuthError(.storeIO, "cannot lock \(path): \(e)")
        }
    }

    deinit { close(fd) }
}
