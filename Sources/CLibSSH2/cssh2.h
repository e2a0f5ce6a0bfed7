/* Shim for libssh2: Swift cannot import function-like macros, so each one we use is
 * wrapped as a static inline cssh2_ function. Also holds the socket I/O callbacks that
 * record when bytes last arrived (used for keepalive-based dead-peer detection). */
#ifndef CSSH2_H
#define CSSH2_H

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Per-session I/O statistics; the session's `abstract` pointer points here. */
typedef struct cssh2_io_stats {
    int64_t last_recv_ns;   /* CLOCK_MONOTONIC of the last successful recv with data */
    uint64_t bytes_in;
    uint64_t bytes_out;
} cssh2_io_stats;

static inline int64_t cssh2_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static ssize_t cssh2_recv_cb(libssh2_socket_t sock, void *buffer, size_t length, int flags, void **abstract) {
    ssize_t n = recv(sock, buffer, length, flags);
    if (n < 0) return -errno;              /* libssh2 expects -errno */
    cssh2_io_stats *st = (cssh2_io_stats *)*abstract;
    if (st && n > 0) { st->bytes_in += (uint64_t)n; st->last_recv_ns = cssh2_monotonic_ns(); }
    return n;
}

static ssize_t cssh2_send_cb(libssh2_socket_t sock, const void *buffer, size_t length, int flags, void **abstract) {
    ssize_t n = send(sock, buffer, length, flags | MSG_NOSIGNAL);
    if (n < 0) return -errno;
    cssh2_io_stats *st = (cssh2_io_stats *)*abstract;
    if (st) st->bytes_out += (uint64_t)n;
    return n;
}

/* A non-blocking eventfd used to wake a session thread out of poll(). */
static inline int cssh2_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

static inline LIBSSH2_SESSION *cssh2_session_new(cssh2_io_stats *stats) {
    LIBSSH2_SESSION *s = libssh2_session_init_ex(NULL, NULL, NULL, stats);
    if (s) {
        libssh2_session_callback_set(s, LIBSSH2_CALLBACK_RECV, (void *)cssh2_recv_cb);
        libssh2_session_callback_set(s, LIBSSH2_CALLBACK_SEND, (void *)cssh2_send_cb);
    }
    return s;
}

static inline int cssh2_session_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, why, "");
}

static inline LIBSSH2_CHANNEL *cssh2_channel_open_session(LIBSSH2_SESSION *s) {
    return libssh2_channel_open_session(s);
}

static inline LIBSSH2_CHANNEL *cssh2_channel_direct_tcpip(LIBSSH2_SESSION *s, const char *host, int port) {
    return libssh2_channel_direct_tcpip(s, host, port);
}

static inline int cssh2_channel_exec(LIBSSH2_CHANNEL *c, const char *cmd, unsigned int len) {
    return libssh2_channel_process_startup(c, "exec", 4, cmd, len);
}

static inline int cssh2_channel_subsystem(LIBSSH2_CHANNEL *c, const char *name) {
    return libssh2_channel_process_startup(c, "subsystem", 9, name, (unsigned int)strlen(name));
}

static inline ssize_t cssh2_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, 0, buf, len);
}

static inline ssize_t cssh2_channel_read_stderr(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, SSH_EXTENDED_DATA_STDERR, buf, len);
}

static inline ssize_t cssh2_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t len) {
    return libssh2_channel_write_ex(c, 0, buf, len);
}

static inline LIBSSH2_SFTP_HANDLE *cssh2_sftp_open(LIBSSH2_SFTP *sftp, const char *path, unsigned long flags, long mode) {
    return libssh2_sftp_open_ex(sftp, path, (unsigned int)strlen(path), flags, mode, LIBSSH2_SFTP_OPENFILE);
}

static inline int cssh2_sftp_fsetstat(LIBSSH2_SFTP_HANDLE *h, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_fstat_ex(h, attrs, 1);
}

static inline int cssh2_sftp_rename(LIBSSH2_SFTP *sftp, const char *from, const char *to) {
    return libssh2_sftp_rename_ex(sftp, from, (unsigned int)strlen(from), to, (unsigned int)strlen(to),
                                  LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
}

static inline int cssh2_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path) {
    return libssh2_sftp_unlink_ex(sftp, path, (unsigned int)strlen(path));
}

static inline int cssh2_sftp_mkdir(LIBSSH2_SFTP *sftp, const char *path, long mode) {
    return libssh2_sftp_mkdir_ex(sftp, path, (unsigned int)strlen(path), mode);
}

static inline int cssh2_sftp_stat(LIBSSH2_SFTP *sftp, const char *path, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_stat_ex(sftp, path, (unsigned int)strlen(path), LIBSSH2_SFTP_STAT, attrs);
}

#endif
