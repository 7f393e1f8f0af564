// Vocabulary: ids in order of first insertion whatever the tokens (short, long, sharing their
// first 8 bytes, with NUL bytes, empty), checked against a std::map reference through many
// rehashes of the lookup table.
#include <catch2/catch.hpp>

#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/data/vocabulary.hpp>

namespace test_vocabulary {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

TEST_CASE("vocabulary: ids in first-insertion order, against a std::map reference", "[data][vocabulary]") {
  std::mt19937_64 rng(7);
  embsr::Vocabulary vocab;
  std::map<std::string, embsr::index_t> reference;
  std::vector<std::string> order;
  // Tokens of 0..19 bytes over a 3-letter alphabet with NULs: many share their first 8 bytes or
  // differ only in length ("1" vs "1\0"), and the table grows from 16 slots past 2^17.
  for (int step = 0; step < 300000; ++step) {
    std::string token(rng() % 20, '\0');
    for (auto& c : token) c = "\0" "12"[rng() % 3];
    const auto it = reference.find(token);
    if (step % 4 == 0) {
      const auto found = vocab.find(token);
      REQUIRE(found.has_value() == (it != reference.end()));
      if (found) REQUIRE(*found == it->second);
      continue;
    }
    const embsr::index_t id = vocab.add(token);
    if (it == reference.end()) {
      REQUIRE(id == static_cast<embsr::index_t>(order.size()));
      reference.emplace(token, id);
      order.push_back(token);
    } else {
      REQUIRE(id == it->second);
    }
  }
  REQUIRE(order.size() > 40000);
  CHECK(vocab.tokens() == order);
  CHECK(vocab.size() == static_cast<embsr::index_t>(order.size()));
  for (const auto& [token, id] : reference) {
    REQUIRE(vocab.token(id) == token);
    REQUIRE(vocab.find(token) == id);
    REQUIRE(vocab.contains(token));
  }
  const embsr::Vocabulary copy = vocab;
  CHECK(copy == vocab);
  CHECK(copy.find(order.back()) == vocab.size() - 1);
}

TEST_CASE("vocabulary: edge tokens and errors", "[data][vocabulary]") {
  embsr::Vocabulary vocab;
  CHECK(vocab.empty());
  CHECK_FALSE(vocab.find("x").has_value());
  CHECK_FALSE(vocab.contains(std::string_view()));
  vocab.prefetch("x");  // a hint, also on an empty vocabulary
  CHECK(vocab.add(std::string_view()) == 0);  // the empty token is a token
  CHECK(vocab.add("12345678") == 1);           // exactly 8 bytes
  CHECK(vocab.add("123456789") == 2);          // 9 bytes, same first 8
  CHECK(vocab.add("1234567890123456789") == 3);
  CHECK(vocab.add(std::string("1\0", 2)) == 4);
  CHECK(vocab.add("1") == 5);
  CHECK(vocab.add("") == 0);
  CHECK(vocab.add("123456789") == 2);
  CHECK(vocab.find(std::string("1\0", 2)) == 4);
  CHECK_FALSE(vocab.find(std::string("1\0\0", 3)).has_value());
  CHECK_FALSE(vocab.find("12345678901234567890").has_value());
  CHECK(vocab.tokens() ==
        std::vector<std::string>{"", "12345678", "123456789", "1234567890123456789", std::string("1\0", 2), "1"});
  CHECK_THROWS_AS(vocab.token(6), embsr::InvalidArgument);
  CHECK_THROWS_AS(vocab.token(-1), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::Vocabulary({"a", "b", "a"}), embsr::InvalidArgument);
  CHECK(embsr::Vocabulary({"view", "cart"}).tokens() == std::vector<std::string>{"view", "cart"});
  CHECK(embsr::Vocabulary({"a"}) != embsr::Vocabulary({"b"}));
}

}  // namespace test_vocabulary
