#pragma once
// Error types. Everything embsr throws derives from embsr::Error; input problems carry the file and
// line they were found at so that a user can go straight to the offending record.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace embsr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A problem in an input file: what() reads "file:line: reason" (line 0 means the file as a whole).
class DataError : public Error {
 public:
  DataError(std::string file, std::size_t line, std::string reason)
      : Error(format(file, line, reason)),
        file_(std::move(file)),
        line_(line),
        reason_(std::move(reason)) {}

  const std::string& file() const noexcept { return file_; }
  std::size_t line() const noexcept { return line_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  static std::string format(const std::string& file, std::size_t line, const std::string& reason) {
    return line == 0 ? file + ": " + reason : file + ":" + std::to_string(line) + ": " + reason;
  }
  std::string file_;
  std::size_t line_;
  std::string reason_;
};

// A violated precondition of an API call (bad option, out-of-range argument).
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& what) : Error(what) {}
};

// A model's parameter or loss is NaN or infinite (training diverged, or a model was fed such
// values): raised by the model's checks so that a training loop can tell it from other errors.
class NonFiniteValue : public InvalidArgument {
 public:
  explicit NonFiniteValue(const std::string& what) : InvalidArgument(what) {}
};

}  // namespace embsr
