#pragma once
// Streaming line reader over a std::istream. Input is read in fixed-size chunks; a line that lies
// inside one chunk is returned as a view into the chunk (no copy), only a line that straddles chunks
// is assembled in a reused string. Memory stays O(chunk + longest line) whatever the file size.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <istream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <embsr/core/error.hpp>

namespace embsr {
namespace detail {

// Fixed-size chunk buffer over an istream, shared by LineReader and CsvReader. Drops a UTF-8 byte
// order mark at the very start (spreadsheet exports write one; it would corrupt the first field).
class ChunkedInput {
 public:
  ChunkedInput(std::istream& in, const std::string& name, std::size_t chunk_size)
      : in_(in), name_(name), buf_(std::max<std::size_t>(chunk_size, 1)) {}

  // True if at least one byte is available (reads the next chunk when the current one is used up).
  bool ensure() { return pos_ < end_ || refill(); }
  const char* data() const { return buf_.data() + pos_; }
  std::size_t available() const { return end_ - pos_; }
  void advance(std::size_t n) { pos_ += n; }
  // Next byte without consuming it, -1 at end of input.
  int peek() { return ensure() ? static_cast<unsigned char>(buf_[pos_]) : -1; }

 private:
  bool refill() {
    if (eof_) return false;
    pos_ = end_ = 0;
    // The BOM may straddle tiny chunks: collect the first 3 bytes before deciding.
    const std::size_t want = first_ ? std::max<std::size_t>(buf_.size(), 3) : buf_.size();
    if (want > buf_.size()) buf_.resize(want);
    while (end_ < want) {
      errno = 0;
      in_.read(buf_.data() + end_, static_cast<std::streamsize>(want - end_));
      end_ += static_cast<std::size_t>(in_.gcount());
      if (in_.bad()) {
        // Linux opens a directory as a stream; reading it then fails with EISDIR.
        const int err = errno;
        throw DataError(name_, 0, err == EISDIR ? std::string("cannot read: is a directory")
                                                : std::string("read error (I/O failure while reading the file") +
                                                      (err != 0 ? std::string(": ") + std::strerror(err) : "") + ")");
      }
      if (!in_) break;
    }
    if (!in_) eof_ = true;
    if (first_) {
      first_ = false;
      if (end_ >= 3 && std::memcmp(buf_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;
      if (pos_ == end_) return refill();  // the chunk held only the BOM
    }
    return pos_ < end_;
  }

  std::istream& in_;
  const std::string& name_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  bool first_ = true;
};

}  // namespace detail

class LineReader {
 public:
  LineReader(std::istream& in, std::string name, std::size_t chunk_size = std::size_t(1) << 16)
      : name_(std::move(name)), src_(in, name_, chunk_size) {}
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Next physical line without its "\n" or "\r\n"; false at end of input. A last line without a
  // trailing newline is still a line. The view is valid until the next call.
  bool next(std::string_view& line) {
    bool carried = false;
    for (;;) {
      if (!src_.ensure()) {
        if (!carried) return false;
        line = carry_;
        break;
      }
      const char* b = src_.data();
      const std::size_t n = src_.available();
      const void* nl = std::memchr(b, '\n', n);
      if (nl) {
        const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - b);
        src_.advance(len + 1);
        if (carried) {
          carry_.append(b, len);
          line = carry_;
        } else {
          line = std::string_view(b, len);
        }
        break;
      }
      if (!carried) carry_.clear();
      carry_.append(b, n);
      carried = true;
      src_.advance(n);
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_;
    return true;
  }

  // 1-based number of the line last returned (0 before the first).
  std::size_t line_number() const { return line_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  detail::ChunkedInput src_;
  std::string carry_;
  std::size_t line_ = 0;
};

}  // namespace embsr
