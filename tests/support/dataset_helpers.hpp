#pragma once
// Helpers shared by the loader tests: catching the expected error, and reading a loaded session
// back as raw tokens.

#include <catch2/catch.hpp>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/data/session_dataset.hpp>

namespace embsr::test {

// Runs f and returns the error type E it throws; fails the test if it throws nothing.
template <class E = DataError, class F>
E expect_error(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  FAIL("expected an exception");
  throw std::logic_error("unreachable");
}

inline std::vector<std::string> item_tokens(const SessionDataset& ds, std::size_t s) {
  std::vector<std::string> out;
  for (const auto i : ds.session(s).items) out.push_back(ds.item_vocab.token(i));
  return out;
}

inline std::vector<std::string> op_names(const SessionDataset& ds, std::size_t s) {
  std::vector<std::string> out;
  for (const auto o : ds.session(s).ops) out.push_back(ds.op_vocab.token(o));
  return out;
}

inline std::vector<index_t> ops_of(const SessionDataset& ds, std::size_t s) {
  const auto v = ds.session(s);
  return std::vector<index_t>(v.ops.begin(), v.ops.end());
}

inline std::vector<double> times_of(const SessionDataset& ds, std::size_t s) {
  const auto v = ds.session(s);
  return std::vector<double>(v.times.begin(), v.times.end());
}

// The first n elements (the sessions checked are longer than n).
template <class T>
std::vector<T> head(const std::vector<T>& v, std::size_t n) {
  REQUIRE(v.size() >= n);
  return std::vector<T>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace embsr::test
