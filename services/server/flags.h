// Command-line and environment configuration of the server binary (Abseil flags).
// Every flag can also be set in a flag file (--flagfile=path) and database URLs from the
// environment: ORDER_PLATFORM_DATABASE_URL, ORDER_PLATFORM_<SERVICE>_DATABASE_URL.
#pragma once

#include "services/server/platform.h"

namespace order_platform::server {

// The PlatformConfig described by the parsed flags and the environment.
PlatformConfig ConfigFromFlags();

// Applies --log_level.
void ConfigureLogging();

}  // namespace order_platform::server
