#pragma once
// Library version (kept in sync with project(VERSION) in CMakeLists.txt).

#define EMBSR_VERSION_MAJOR 0
#define EMBSR_VERSION_MINOR 1
#define EMBSR_VERSION_PATCH 0

namespace embsr {
inline const char* version_string() { return "0.1.0"; }
}  // namespace embsr
