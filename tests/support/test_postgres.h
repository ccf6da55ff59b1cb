// Test support: a real PostgreSQL server for tests that need one.
//
// By default every test process gets its own private, throwaway cluster: initdb + pg_ctl under a
// fresh /tmp/op_test_pg.XXXXXX directory, TCP on 127.0.0.1 with a kernel-chosen free port, the unix
// socket in the data directory, fsync off. It is started on first use, and at exit it is stopped
// and its directory removed; a watchdog process does the same if the test process dies without
// running exit handlers (abort, crash, SIGKILL). When the process runs as root, initdb/pg_ctl run
// as the "postgres" user (else "nobody"), because PostgreSQL refuses to run as root.
//
// Set ORDER_PLATFORM_TEST_DSN to use a server you run instead (e.g. the DSN printed by
// deploy/pg_local.sh start); databases created on it are dropped at exit unless
// ORDER_PLATFORM_TEST_KEEP_DATABASES=1. ORDER_PLATFORM_TEST_PG_BINDIR overrides where initdb/pg_ctl
// are found (default /usr/lib/postgresql/15/bin, else the highest /usr/lib/postgresql/*/bin).
//
// Every failure to get a server is fatal (message on stderr, then abort): tests never skip
// silently. Link with -lpq.
#pragma once

#include <string>

namespace order_platform::testing {

// Returns a DSN (postgresql://...) for a PostgreSQL server usable by tests:
// ORDER_PLATFORM_TEST_DSN if set and non-empty (checked to accept connections), else the private
// cluster of this process, started on the first call (about a second) and stopped at exit.
// The DSN names the maintenance database; create a database per suite with CreateTestDatabase.
// Thread-safe; the returned reference stays valid for the life of the process.
// Fatal if no server can be had.
const std::string& TestServerDsn();

// Creates a fresh, empty database (from template0) on the TestServerDsn() server, named
// "<sanitized name_prefix>_<pid>_<counter>_<random>" (at most 63 characters, only [a-z0-9_]), and
// returns its DSN: TestServerDsn() with the database replaced. Use one per test suite for
// isolation. Thread-safe. Fatal if the database cannot be created or connected to.
std::string CreateTestDatabase(const std::string& name_prefix);

// True when TestServerDsn() is this process's private cluster (ORDER_PLATFORM_TEST_DSN unset),
// i.e. when StopPrivateServer/StartPrivateServer may be used. Starts the server if needed.
bool UsingPrivateServer();

// How StopPrivateServer shuts the server down (pg_ctl stop -m immediate|fast).
enum class StopMode {
  kImmediate,  // like a crash: no shutdown checkpoint, crash recovery runs on the next start
  kFast,       // clean shutdown: clients disconnected, checkpoint written
};

// Stops the private cluster and waits until it is gone; established connections break and new ones
// fail until StartPrivateServer. No-op if already stopped. Committed transactions survive even
// kImmediate (the cluster runs with synchronous_commit=on; only fsync is off, which matters for an
// OS crash, not a server crash). Fatal when ORDER_PLATFORM_TEST_DSN is in use or pg_ctl fails.
void StopPrivateServer(StopMode mode = StopMode::kImmediate);

// Starts the private cluster again on the same data directory and port (so TestServerDsn() and
// every CreateTestDatabase DSN stay valid) and waits until it accepts connections (after crash
// recovery, if any). No-op if running. Fatal when ORDER_PLATFORM_TEST_DSN is in use, or when the
// server cannot start (e.g. another process took the port meanwhile).
void StartPrivateServer();

}  // namespace order_platform::testing
