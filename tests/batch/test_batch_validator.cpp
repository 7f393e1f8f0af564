// The batch validator (batch/batch_validator.hpp): every field of its message — who, the session's
// position, its example id, the array, and the detail (value, position, range) — on a HostBatch
// and on a Batch in every enabled memory space (the same checks: the messages must agree), the
// consumer's limits, array lengths, and the run GRU's schedule.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/batch/batch_validator.hpp>

#include "exec_spaces.hpp"

namespace test_batch_validator {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;
using V = std::vector<index_t>;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

namespace {

// ex0: 5 5 7 5 -> 9;  ex1: 3 -> 4;  ex2: 7 3 7 3 -> 5. Items < 10, operations < 3.
ExampleSet hand_examples() {
  ExampleSet set;
  set.add(V{5, 5, 7, 5}, V{0, 1, 0, 2}, 9, 1, 0, 0.0);
  set.add(V{3}, V{2}, 4, 0, 1, 1.0);
  set.add(V{7, 3, 7, 3}, V{1, 1, 1, 1}, 5, 2, 2, 2.0);
  return set;
}

// Positions 0, 1, 2 hold examples 2, 0, 1 (so position and example id differ).
HostBatch good_batch() {
  BatchBuilder builder;
  return builder.build(hand_examples(), V{2, 0, 1});
}

BatchLimits limits(index_t items = 10, index_t ops = 3) {
  BatchLimits l;
  l.num_items = items;
  l.num_ops = ops;
  return l;
}

// The message of validate_batch on the host ("" when valid).
std::string host_message(const HostBatch& h, const BatchLimits& l, const std::string& who = "test") {
  try {
    validate_batch(h, l, who);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

// The message of validate_batch on the batch uploaded to the memory space of Exec ("" when valid).
template <class Exec>
std::string device_message(const HostBatch& h, const BatchLimits& l, const std::string& who = "test") {
  const auto batch = to_memory_space<typename Exec::memory_space>(h);
  try {
    validate_batch(Exec(), batch, l, who);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

struct Corruption {
  const char* what;
  void (*corrupt)(HostBatch&);
  const char* expected;  // the message after "test: "
};

// One corruption per check family, with the exact message it must give.
const std::vector<Corruption>& corruptions() {
  static const std::vector<Corruption> cases{
      {"target out of range", [](HostBatch& h) { h.targets[1] = 10; },
       "batch session 1 (example 0): targets: item id 10 outside [0, 10)"},
      {"next operation", [](HostBatch& h) { h.next_ops[0] = -1; },
       "batch session 0 (example 2): next_ops: operation id -1 outside [0, 3)"},
      {"item out of range", [](HostBatch& h) { h.micro_items[static_cast<std::size_t>(h.micro_offsets[1]) + 2] = 10; },
       "batch session 1 (example 0): micro_items: item id 10 at position 2 outside [0, 10)"},
      {"operation out of range", [](HostBatch& h) { h.micro_ops[static_cast<std::size_t>(h.micro_offsets[2])] = 3; },
       "batch session 2 (example 1): micro_ops: operation id 3 at position 0 outside [0, 3)"},
      {"empty session", [](HostBatch& h) { h.micro_offsets[1] = 0; },
       "batch session 0 (example 2): micro_offsets (empty session)"},
      {"wrong edge count", [](HostBatch& h) { h.edge_offsets[1] -= 1; },
       "batch session 0 (example 2): edge_offsets: 2 edges for 4 macro items"},
      {"offsets not starting at 0", [](HostBatch& h) { h.node_offsets[0] = 1; },
       "batch session 0 (example 2): node_offsets: does not start at 0"},
      {"edge destination", [](HostBatch& h) { h.edge_dst[0] = h.edge_src[0]; },
       "batch session 0 (example 2): edge_dst: entry 0: is not the node of its destination macro item"},
      {"incidence order",
       [](HostBatch& h) {
         const auto lo = static_cast<std::size_t>(h.node_in_offsets[1]);  // node 1 has in-edges {0, 2}
         std::swap(h.node_in_edges[lo], h.node_in_edges[lo + 1]);
       },
       "batch session 0 (example 2): node_in_edges: entry 2: edges not in ascending order"},
      {"run end", [](HostBatch& h) { h.run_end[static_cast<std::size_t>(h.macro_offsets[1])] += 1; },
       "batch session 1 (example 0): run_begin: entry 4: run covers micro-behavior 6 of another item"},
      {"macro alias", [](HostBatch& h) { h.macro_alias[static_cast<std::size_t>(h.macro_offsets[1])] += 1; },
       "batch session 1 (example 0): macro_alias: entry 4: points to a node of another item"},
      {"node session", [](HostBatch& h) { h.node_session.back() = 0; },
       "batch session 2 (example 1): node_session: entry 4: is 0, expected 2"},
      {"node item out of range", [](HostBatch& h) { h.node_items[0] = -2; },
       "batch session 0 (example 2): node_items: entry 0: item -2 outside [0, 10)"},
      {"macro alias out of the session", [](HostBatch& h) { h.macro_alias[0] = 2; },
       "batch session 0 (example 2): macro_alias: entry 0: node 2 outside [0, 2)"},
      {"micro alias", [](HostBatch& h) { h.micro_alias[0] = 1 - h.micro_alias[0]; },
       "batch session 0 (example 2): micro_alias: entry 0: points to a node of another item"},
      {"run order", [](HostBatch& h) { std::swap(h.run_order[0], h.run_order[1]); },
       "batch: run_order: entry 1: run 4 follows run 0: runs must be sorted by length, descending, then by index"},
      {"run order out of range", [](HostBatch& h) { h.run_order[3] = 8; }, "batch: run_order: entry 3: run 8 outside [0, 8)"},
      {"step counts", [](HostBatch& h) { h.run_step_offsets[1] -= 1; },
       "batch: run_step_offsets: step 0 has 7 rows, expected 8 (one per run longer than 0)"},
  };
  return cases;
}

}  // namespace

TEST_CASE("batch validator: a valid batch passes, empty batches only when allowed", "[batch][valid]") {
  const HostBatch good = good_batch();
  CHECK(host_message(good, limits()) == "");
  CHECK_NOTHROW(validate_batch(good, 10, 3));
  BatchBuilder builder;
  const HostBatch empty = builder.build(hand_examples(), V{});
  CHECK(host_message(empty, limits()) == "");
  BatchLimits strict = limits();
  strict.allow_empty = false;
  CHECK(host_message(empty, strict, "EMBSR") == "EMBSR: empty batch");
}

TEST_CASE("batch validator: the message names who, the session, its example, the field and the detail",
          "[batch][valid]") {
  const HostBatch good = good_batch();
  for (const Corruption& c : corruptions()) {
    INFO(c.what);
    HostBatch bad = good;
    c.corrupt(bad);
    CHECK(host_message(bad, limits()) == std::string("test: ") + c.expected);
    CHECK_THROWS_AS(validate_batch(bad, 10, 3), InvalidArgument);
  }
  // The host entry with (num_items, num_ops) names itself.
  HostBatch bad = good;
  bad.targets[1] = 9;
  CHECK_THROWS_WITH(validate_batch(bad, 9, 3),
                    Equals("validate_batch: batch session 1 (example 0): targets: item id 9 outside [0, 9)"));
}

TEMPLATE_LIST_TEST_CASE("batch validator: a Batch in the memory space gives the host's message", "[batch][valid]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const HostBatch good = good_batch();
  CHECK(device_message<Exec>(good, limits()) == "");
  for (const Corruption& c : corruptions()) {
    INFO(c.what);
    HostBatch bad = good;
    c.corrupt(bad);
    CHECK(device_message<Exec>(bad, limits()) == std::string("test: ") + c.expected);
  }
}

TEMPLATE_LIST_TEST_CASE("batch validator: who", "[batch][valid]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  HostBatch bad = good_batch();
  bad.targets[2] = -1;
  CHECK_THAT(device_message<Exec>(bad, limits(), "EMBSR"), StartsWith("EMBSR: batch session 2 "));
  CHECK_THAT(device_message<Exec>(bad, limits(), "Recommender"), StartsWith("Recommender: batch session 2 "));
  CHECK_THAT(host_message(bad, limits(), "EMBSR"), StartsWith("EMBSR: batch session 2 "));
}

TEMPLATE_LIST_TEST_CASE("batch validator: the session is the lowest offending position", "[batch][valid]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  HostBatch bad = good_batch();
  bad.micro_ops.back() = 7;  // session 2
  bad.targets[1] = 11;       // session 1
  CHECK_THAT(device_message<Exec>(bad, limits()), Contains("batch session 1 (example 0): targets"));
  bad.next_ops[0] = 5;  // session 0
  CHECK_THAT(device_message<Exec>(bad, limits()), Contains("batch session 0 (example 2): next_ops"));
  CHECK_THAT(host_message(bad, limits()), Contains("batch session 0 (example 2): next_ops"));
}

TEMPLATE_LIST_TEST_CASE("batch validator: the example id is the session's, not its position", "[batch][valid]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  BatchBuilder builder;
  const V ids{1, 2, 0, 2};  // positions 0..3 hold examples 1, 2, 0, 2
  for (std::size_t b = 0; b < ids.size(); ++b) {
    HostBatch bad = builder.build(hand_examples(), ids);
    bad.targets[b] = 10;
    const std::string expected =
        "batch session " + std::to_string(b) + " (example " + std::to_string(ids[b]) + "): targets";
    CHECK_THAT(device_message<Exec>(bad, limits()), Contains(expected));
    CHECK_THAT(host_message(bad, limits()), Contains(expected));
  }
}

TEMPLATE_LIST_TEST_CASE("batch validator: the field, and the detail with value, position and range",
                        "[batch][valid]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const HostBatch good = good_batch();
  {
    HostBatch bad = good;  // session 1 = example 0 = 5 5 7 5: its last micro-behavior
    bad.micro_items[static_cast<std::size_t>(bad.micro_offsets[2]) - 1] = 12;
    CHECK(device_message<Exec>(bad, limits(13, 3)) == "test: batch session 1 (example 0): micro_alias: entry 7: "
                                                      "points to a node of another item");
    CHECK(device_message<Exec>(bad, limits()) ==
          "test: batch session 1 (example 0): micro_items: item id 12 at position 3 outside [0, 10)");
  }
  {
    HostBatch bad = good;
    bad.micro_ops[1] = -4;
    CHECK(device_message<Exec>(bad, limits()) ==
          "test: batch session 0 (example 2): micro_ops: operation id -4 at position 1 outside [0, 3)");
    BatchLimits two_ops = limits(10, 2);
    two_ops.check_next_ops = false;  // session 0's next operation is 2
    CHECK(device_message<Exec>(good, two_ops) ==
          "test: batch session 1 (example 0): micro_ops: operation id 2 at position 3 outside [0, 2)");
  }
}

TEMPLATE_LIST_TEST_CASE("batch validator: the consumer's limits", "[batch][valid]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const HostBatch good = good_batch();
  BatchLimits l = limits();
  l.max_length = 3;  // sessions 0 and 1 have 4 micro-behaviors
  CHECK(device_message<Exec>(good, l) ==
        "test: batch session 0 (example 2): micro_offsets (length above max_length): 4 > 3");
  l.max_length = 4;
  CHECK(device_message<Exec>(good, l) == "");
  HostBatch bad = good;
  bad.next_ops[1] = 99;
  l.check_next_ops = false;  // a model that learns the next operation ignores next_ops
  CHECK(device_message<Exec>(bad, l) == "");
  CHECK(host_message(bad, l) == "");
  l.check_next_ops = true;
  CHECK_THAT(device_message<Exec>(bad, l), Contains("session 1 (example 0): next_ops: operation id 99"));
  BatchBuilder builder;
  const HostBatch empty = builder.build(hand_examples(), V{});
  l.allow_empty = false;
  CHECK(device_message<Exec>(empty, l) == "test: empty batch");
  l.allow_empty = true;
  CHECK(device_message<Exec>(empty, l) == "");
}

TEMPLATE_LIST_TEST_CASE("batch validator: array lengths", "[batch][valid]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const HostBatch good = good_batch();
  HostBatch short_array = good;
  short_array.micro_alias.pop_back();
  const std::string alias = "test: batch: micro_alias: has 8 entries, expected 9 (micro_offsets.back())";
  CHECK(host_message(short_array, limits()) == alias);
  CHECK(device_message<Exec>(short_array, limits()) == alias);
  CHECK_THROWS_WITH(validate_batch(short_array, 10, 3), Contains("micro_alias: has 8 entries, expected 9"));
  HostBatch short_labels = good;
  short_labels.next_ops.pop_back();
  CHECK(device_message<Exec>(short_labels, limits()) ==
        "test: batch: next_ops: has 2 entries, expected 3 (one per session)");
  HostBatch short_schedule = good;
  short_schedule.run_order.pop_back();
  CHECK(device_message<Exec>(short_schedule, limits()) ==
        "test: batch: run_order: has 7 entries, expected 8 (macro_offsets.back())");
}

TEMPLATE_LIST_TEST_CASE("batch validator: corrupted Views after the upload are found", "[batch][valid]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const HostBatch good = good_batch();
  auto batch = to_memory_space<M>(good);
  CHECK_NOTHROW(validate_batch(Exec(), batch, limits(), "test"));
  Kokkos::deep_copy(Kokkos::subview(batch.micro_offsets, 3), 8);  // no longer ends at T = 9
  CHECK_THROWS_WITH(validate_batch(Exec(), batch, limits(), "test"),
                    Equals("test: batch session 2 (example 1): micro_offsets: ends at 8, not at 9 (the length of "
                           "the arrays it indexes)"));
}

}  // namespace test_batch_validator
