#pragma once
// Files that are either whole or absent: every output of the library and its tools (checkpoints,
// metrics, curves) is written to "<path>.tmp.<pid>", fsynced, renamed over `path`, and the directory
// fsynced, so a crash or a full disk leaves the old file or the new one, never half of one, and
// every failure is an embsr::Error naming the path and the system's reason.
//
// A crash between creating and renaming the temporary file leaves it behind; the next write of the
// same `path` removes such leftovers of processes that no longer run (only names of our own pattern,
// "<name>.tmp.<digits>", beside `path`).

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <embsr/core/error.hpp>

namespace embsr {

namespace detail {

inline std::string errno_text(int err) { return std::strerror(err); }

inline std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

inline std::string base_name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Writes all of `data` to `fd`; returns 0 or an errno.
inline int write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

// The pid in a name "<base>.tmp.<pid>", or -1 when `name` is not of that form.
inline long temporary_owner(std::string_view name, std::string_view base) {
  constexpr std::string_view kTmp = ".tmp.";
  if (name.size() <= base.size() + kTmp.size() || name.substr(0, base.size()) != base ||
      name.substr(base.size(), kTmp.size()) != kTmp)
    return -1;
  long pid = 0;
  for (const char c : name.substr(base.size() + kTmp.size())) {
    if (c < '0' || c > '9' || pid > 100000000) return -1;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

}  // namespace detail

inline std::string temporary_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
}

// Removes "<path>.tmp.<pid>" files left by crashed writers of `path` (processes that no longer
// exist). Returns how many were removed. Best effort: an unreadable directory removes nothing.
inline std::size_t remove_stale_temporaries(const std::string& path) {
  const std::string dir = detail::directory_of(path), base = detail::base_name_of(path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::size_t removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const long pid = detail::temporary_owner(e->d_name, base);
    if (pid <= 0) continue;
    // kill(pid, 0) fails with ESRCH only when no such process exists: a live writer keeps its file.
    const bool owner_alive = pid == static_cast<long>(::getpid()) || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
    if (owner_alive) continue;
    if (::unlink((dir + "/" + e->d_name).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

// Writes `bytes` to `path` atomically (see the top of this file). Throws embsr::Error naming the
// step, the path and the reason (a full disk is "No space left on device"); the temporary file is
// removed and an existing file under `path` is left as it was.
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  remove_stale_temporaries(path);
  const std::string tmp = temporary_path_for(path);
  auto fail = [&](const std::string& what, int err) {
    throw Error("cannot write '" + path + "': " + what + ": " + detail::errno_text(err));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create '" + tmp + "'", errno);
  int err = detail::write_all(fd, bytes.data(), bytes.size());
  std::string step = "writing '" + tmp + "'";
  if (err == 0 && ::fsync(fd) != 0) {
    err = errno;
    step = "fsync of '" + tmp + "'";
  }
  if (::close(fd) != 0 && err == 0) {
    err = errno;
    step = "closing '" + tmp + "'";
  }
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    step = "renaming '" + tmp + "' to '" + path + "'";
  }
  if (err != 0) {
    ::unlink(tmp.c_str());
    fail(step, err);
  }
  // Make the rename itself durable (best effort: some file systems refuse fsync on directories).
  const int dir = ::open(detail::directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

// Throws embsr::Error unless files can be created, written and removed in `dir` (checked with a
// probe file before a long run, so that an unwritable output is found in a second, not after an
// epoch).
inline void check_directory_writable(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw Error("output directory '" + dir + "': " + detail::errno_text(errno));
  if (!S_ISDIR(st.st_mode)) throw Error("output directory '" + dir + "' is not a directory");
  const std::string probe = dir + "/.embsr-write-check.tmp." + std::to_string(static_cast<long long>(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("output directory '" + dir + "' is not writable: " + detail::errno_text(errno));
  const int err = detail::write_all(fd, "x", 1);
  ::close(fd);
  ::unlink(probe.c_str());
  if (err != 0) throw Error("output directory '" + dir + "' is not writable: " + detail::errno_text(err));
}

}  // namespace embsr
