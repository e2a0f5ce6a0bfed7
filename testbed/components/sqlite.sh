# shellcheck shell=bash
# sqlite: not a daemon. The agent's journal uses GRDB, which builds against the system SQLite (libsqlite3-dev);
# listing it here makes `tb install` provide it on a fresh machine before `swift build`. "Up" = installed.
sqlite_packages() { echo libsqlite3-dev; }
sqlite_up() { pkg_installed libsqlite3-dev || die "sqlite: libsqlite3-dev is missing; run: tb install sqlite"; }
sqlite_down() { :; }
sqlite_is_up() { pkg_installed libsqlite3-dev; }
sqlite_status() { echo "  libsqlite3-dev $(dpkg-query -W -f='${Version}' libsqlite3-dev 2>/dev/null || echo missing)"; }
sqlite_env() { :; }
