#pragma once
// Minimal .npy (NumPy format version 1.0) reading and writing for the tests that exchange arrays
// with the PyTorch oracle (tests/oracle). Supported: little-endian float64 ('<f8') and int32
// ('<i4'), C order (fortran_order False), any rank (the oracle uses 1-D and 2-D). Every problem
// throws std::runtime_error naming the file.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace embsr::test {

struct NpyArray {
  std::vector<std::size_t> shape;
  std::vector<double> data;  // C order
};

struct NpyArrayI32 {
  std::vector<std::size_t> shape;
  std::vector<std::int32_t> data;  // C order
};

namespace npy_detail {

[[noreturn]] inline void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("npy: " + path + ": " + what);
}

inline bool little_endian_host() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

inline std::size_t element_count(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t s : shape) n *= s;
  return n;
}

inline void write_raw(const std::string& path, const char* descr, const void* data, std::size_t element_size,
                      const std::vector<std::size_t>& shape) {
  if (!little_endian_host()) fail(path, "big-endian hosts are not supported");
  std::string shape_text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) shape_text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  shape_text += shape.size() == 1 ? ",)" : ")";  // Python's 1-tuple needs the comma
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape_text + ", }";
  // Magic (6) + version (2) + header length (2) + header, padded with spaces and ended by '\n' so
  // that the data starts at a multiple of 64 bytes (what NumPy itself writes).
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) fail(path, "header too long for format version 1.0");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, "cannot open for writing");
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', '\x01', '\x00'};
  out.write(magic, 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(len_bytes, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  const std::size_t bytes = element_count(shape) * element_size;
  if (bytes > 0) {
    if (data == nullptr) fail(path, "null data for a non-empty array");
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  }
  out.close();
  if (!out) fail(path, "write failed");
}

// Value of key `key` in the header dict, as raw text (up to the next top-level ',' or '}').
inline std::string header_value(const std::string& path, const std::string& header, const std::string& key) {
  const std::string pattern = "'" + key + "':";
  const std::size_t at = header.find(pattern);
  if (at == std::string::npos) fail(path, "header has no '" + key + "'");
  std::size_t i = at + pattern.size();
  while (i < header.size() && header[i] == ' ') ++i;
  std::size_t end = i;
  if (i < header.size() && header[i] == '(') {
    end = header.find(')', i);
    if (end == std::string::npos) fail(path, "unterminated shape tuple");
    return header.substr(i, end - i + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  std::string value = header.substr(i, end - i);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

inline std::vector<std::size_t> parse_shape(const std::string& path, const std::string& text) {
  std::vector<std::size_t> shape;
  std::size_t i = 1;  // after '('
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= text.size() || text[i] == ')') break;
    if (text[i] < '0' || text[i] > '9') fail(path, "bad shape " + text);
    std::size_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') v = v * 10 + static_cast<std::size_t>(text[i++] - '0');
    shape.push_back(v);
  }
  return shape;
}

// Reads the header of `path`, checks descr / fortran_order, returns the shape and the raw bytes.
inline std::vector<std::size_t> read_raw(const std::string& path, const char* descr, std::size_t element_size,
                                         std::vector<char>& bytes) {
  if (!little_endian_host()) fail(path, "big-endian hosts are not supported");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open for reading");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail(path, "not a .npy file");
  std::size_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char l[2];
    if (!in.read(reinterpret_cast<char*>(l), 2)) fail(path, "truncated header");
    header_len = l[0] | (static_cast<std::size_t>(l[1]) << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char l[4];
    if (!in.read(reinterpret_cast<char*>(l), 4)) fail(path, "truncated header");
    header_len = l[0] | (static_cast<std::size_t>(l[1]) << 8) | (static_cast<std::size_t>(l[2]) << 16) |
                 (static_cast<std::size_t>(l[3]) << 24);
  } else {
    fail(path, "unsupported format version " + std::to_string(static_cast<int>(magic[6])));
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) fail(path, "truncated header");
  const std::string got_descr = header_value(path, header, "descr");
  if (got_descr != std::string("'") + descr + "'")
    fail(path, "dtype " + got_descr + ", expected '" + descr + "'");
  if (header_value(path, header, "fortran_order") != "False") fail(path, "fortran_order arrays are not supported");
  std::vector<std::size_t> shape = parse_shape(path, header_value(path, header, "shape"));
  const std::size_t nbytes = element_count(shape) * element_size;
  bytes.assign(nbytes, '\0');
  if (nbytes > 0 && !in.read(bytes.data(), static_cast<std::streamsize>(nbytes)))
    fail(path, "truncated data (expected " + std::to_string(nbytes) + " bytes)");
  if (in.peek() != std::char_traits<char>::eof()) fail(path, "trailing bytes after the data");
  return shape;
}

}  // namespace npy_detail

// Writes `data` (C order, product of `shape` elements) as a '<f8' array.
inline void write_npy(const std::string& path, const double* data, std::vector<std::size_t> shape) {
  npy_detail::write_raw(path, "<f8", data, sizeof(double), shape);
}

// Writes `data` (C order, product of `shape` elements) as a '<i4' array.
inline void write_npy(const std::string& path, const int* data, std::vector<std::size_t> shape) {
  static_assert(sizeof(int) == 4, "npy.hpp assumes a 32-bit int");
  npy_detail::write_raw(path, "<i4", data, sizeof(int), shape);
}

inline NpyArray read_npy_f64(const std::string& path) {
  std::vector<char> bytes;
  NpyArray a;
  a.shape = npy_detail::read_raw(path, "<f8", sizeof(double), bytes);
  a.data.resize(bytes.size() / sizeof(double));
  if (!bytes.empty()) std::memcpy(a.data.data(), bytes.data(), bytes.size());
  return a;
}

inline NpyArrayI32 read_npy_i32(const std::string& path) {
  std::vector<char> bytes;
  NpyArrayI32 a;
  a.shape = npy_detail::read_raw(path, "<i4", sizeof(std::int32_t), bytes);
  a.data.resize(bytes.size() / sizeof(std::int32_t));
  if (!bytes.empty()) std::memcpy(a.data.data(), bytes.data(), bytes.size());
  return a;
}

}  // namespace embsr::test
