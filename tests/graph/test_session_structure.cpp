// SessionStructure: macro items with operation runs, distinct items in first-occurrence order,
// aliases; hand examples, a long session through the hashing path, and buffer reuse.
#include <catch2/catch.hpp>

#include <map>
#include <vector>

#include <embsr/graph/session_structure.hpp>

namespace test_session_structure {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;
using V = std::vector<index_t>;

namespace {
SessionStructure computed(const V& items) {
  SessionStructure s;
  s.compute(items);
  return s;
}
}  // namespace

TEST_CASE("session structure: empty and one-item sessions", "[session_structure]") {
  const auto empty = computed({});
  CHECK(empty.num_micro() == 0);
  CHECK(empty.num_macro() == 0);
  CHECK(empty.num_distinct() == 0);
  CHECK(empty.run_end().empty());

  const auto one = computed({5, 5, 5});
  CHECK(one.macro_items() == V{5});
  CHECK(one.run_begin() == V{0});
  CHECK(one.run_end() == V{3});
  CHECK(one.distinct() == V{5});
  CHECK(one.micro_alias() == V{0, 0, 0});
  CHECK(one.macro_alias() == V{0});
}

TEST_CASE("session structure: runs, distinct order and aliases by hand", "[session_structure]") {
  // a a b b b a c c a  with a=7, b=3, c=9: distinct order is first occurrence (a, b, c), not id order.
  const auto s = computed({7, 7, 3, 3, 3, 7, 9, 9, 7});
  CHECK(s.num_micro() == 9);
  CHECK(s.macro_items() == V{7, 3, 7, 9, 7});
  CHECK(s.run_begin() == V{0, 2, 5, 6, 8});
  CHECK(s.run_end() == V{2, 5, 6, 8, 9});
  CHECK(s.distinct() == V{7, 3, 9});
  CHECK(s.macro_alias() == V{0, 1, 0, 2, 0});
  CHECK(s.micro_alias() == V{0, 0, 1, 1, 1, 0, 2, 2, 0});
}

TEST_CASE("session structure: the example of the paper's Fig. 3", "[session_structure]") {
  // S^v = v1 v2 v3 v2 v3 v4 with operation runs (o1) (o1) (o1) (o1 o2) (o1 o2 o3) (o1).
  const auto s = computed({1, 2, 3, 2, 2, 3, 3, 3, 4});
  CHECK(s.macro_items() == V{1, 2, 3, 2, 3, 4});
  CHECK(s.run_begin() == V{0, 1, 2, 3, 5, 8});
  CHECK(s.run_end() == V{1, 2, 3, 5, 8, 9});
  CHECK(s.distinct() == V{1, 2, 3, 4});
  CHECK(s.macro_alias() == V{0, 1, 2, 1, 2, 3});
}

TEST_CASE("session structure: long sessions (hashing path) agree with a naive derivation", "[session_structure]") {
  // Items spaced by 2^20 collide in the low bits and stress the probing of the table.
  SessionStructure s;
  for (const index_t stride : {1, 1 << 20, 12345}) {
    for (const std::size_t distinct : {5u, 16u, 17u, 40u, 300u}) {
      V items;
      for (std::size_t i = 0; i < 4 * distinct; ++i) {
        const auto item = static_cast<index_t>(((i * 7) % distinct) * static_cast<std::size_t>(stride) % 2000000000);
        items.push_back(item);
        if (i % 3 == 0) items.push_back(item);  // some runs of length 2
      }
      s.compute(items);

      V macro, begin, end, order, macro_alias, micro_alias;
      std::map<index_t, index_t> id;
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (id.find(items[i]) == id.end()) {
          id[items[i]] = static_cast<index_t>(order.size());
          order.push_back(items[i]);
        }
        if (i == 0 || items[i] != items[i - 1]) {
          if (i > 0) end.push_back(static_cast<index_t>(i));
          macro.push_back(items[i]);
          begin.push_back(static_cast<index_t>(i));
          macro_alias.push_back(id[items[i]]);
        }
        micro_alias.push_back(id[items[i]]);
      }
      end.push_back(static_cast<index_t>(items.size()));
      INFO("stride " << stride << ", distinct " << distinct);
      CHECK(s.num_distinct() == distinct);
      CHECK(s.macro_items() == macro);
      CHECK(s.run_begin() == begin);
      CHECK(s.run_end() == end);
      CHECK(s.distinct() == order);
      CHECK(s.macro_alias() == macro_alias);
      CHECK(s.micro_alias() == micro_alias);
    }
  }
}

TEST_CASE("session structure: reuse keeps no stale state and does not reallocate", "[session_structure]") {
  SessionStructure s;
  V big;
  for (index_t i = 0; i < 100; ++i) big.push_back(i % 37);
  s.compute(big);
  s.compute(V{4, 4, 2});
  CHECK(s.macro_items() == V{4, 2});
  CHECK(s.distinct() == V{4, 2});
  CHECK(s.micro_alias() == V{0, 0, 1});

  s.compute(big);
  const auto* alias = s.micro_alias().data();
  const auto* distinct = s.distinct().data();
  for (int rep = 0; rep < 3; ++rep) {
    s.compute(V{1, 2, 3, 1});
    s.compute(big);
  }
  CHECK(s.micro_alias().data() == alias);
  CHECK(s.distinct().data() == distinct);
  CHECK(s.num_distinct() == 37);
}

}  // namespace test_session_structure
