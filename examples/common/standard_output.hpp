#pragma once
// The tools report on standard output; answers or reports that never reach the reader (a full disk
// under a redirect, /dev/full) must not pass for success. One check for the C and C++ streams.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <embsr/core/error.hpp>

namespace embsr::cli {

// Flushes std::cout and stdout; throws embsr::Error("cannot write standard output: reason") if
// either has failed. The reason is errno's: a caller that wants no stale one clears errno before
// writing (a failed write may happen inside an earlier <<, when a buffer fills).
inline void check_standard_output() {
  std::cout.flush();
  const bool failed = !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout);
  if (failed) {
    const int err = errno;
    throw Error(std::string("cannot write standard output: ") + (err != 0 ? std::strerror(err) : "unknown error"));
  }
}

}  // namespace embsr::cli
