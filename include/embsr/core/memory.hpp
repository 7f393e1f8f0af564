#pragma once
// How much memory this process may still use (the default limit against which a model read from a
// file is checked before it is built), and byte sizes as people write them ("512M", "8G").

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>

#include <unistd.h>

#include <embsr/core/error.hpp>

namespace embsr {

namespace detail {

// The first number of a file such as /sys/fs/cgroup/memory.max ("max" or missing: none).
inline bool read_first_number(const char* path, std::uint64_t& out) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word.empty() || word.find_first_not_of("0123456789") != std::string::npos) return false;
  try {
    out = std::stoull(word);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace detail

// The smaller of the kernel's MemAvailable (/proc/meminfo) and what the process's cgroup (v2) still
// allows; sysconf's available pages where /proc is missing; UINT64_MAX when nothing is known.
inline std::uint64_t available_memory_bytes() {
  std::uint64_t available = std::numeric_limits<std::uint64_t>::max();
  bool known = false;
  if (std::ifstream meminfo("/proc/meminfo"); meminfo) {
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib) {
      std::getline(meminfo, unit);
      if (key == "MemAvailable:") {
        available = kib * 1024;
        known = true;
        break;
      }
    }
  }
  if (!known) {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) available = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  }
  std::uint64_t cgroup_max = 0, cgroup_used = 0;
  if (detail::read_first_number("/sys/fs/cgroup/memory.max", cgroup_max) &&
      detail::read_first_number("/sys/fs/cgroup/memory.current", cgroup_used))
    available = std::min(available, cgroup_max > cgroup_used ? cgroup_max - cgroup_used : 0);
  return available;
}

// "123", "512K", "64M", "8G", "1T" (powers of 1024; a trailing "B" or "iB" is allowed) -> bytes.
inline std::uint64_t parse_byte_size(std::string_view text) {
  auto fail = [&] {
    throw InvalidArgument("'" + std::string(text) + "' is not a size (expected e.g. 4096, 512M, 8G)");
  };
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) fail();
  std::uint64_t value = std::stoull(std::string(text.substr(0, digits)));
  std::string_view unit = text.substr(digits);
  if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "iB") unit.remove_suffix(2);
  else if (!unit.empty() && unit.back() == 'B') unit.remove_suffix(1);
  int shift = 0;
  if (unit.size() > 1) fail();
  if (unit.size() == 1) {
    switch (unit[0]) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: fail();
    }
  }
  if (shift > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) fail();
  return value << shift;
}

// 1536 -> "1.5 KiB", for messages.
inline std::string format_bytes(std::uint64_t bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace embsr
