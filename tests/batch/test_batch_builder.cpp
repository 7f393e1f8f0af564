// Ragged batches and their builder: a hand-derived batch, per-session slices independent of batch
// company, the run GRU's step schedule against a brute-force sort, uploads to every enabled memory
// space (and back), buffer reuse, the sampler, and real epochs passing the validator (whose
// messages are tested in test_batch_validator.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/data/preprocess.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/batch/batch_validator.hpp>

#include "exec_spaces.hpp"
#include "jd_sample.hpp"

namespace test_batch_builder {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;
using V = std::vector<index_t>;
using Catch::Matchers::Contains;

namespace {

// ex0: 5 5 7 5 -> 9;  ex1: 3 -> 4;  ex2: 7 3 7 3 -> 5. Items < 10, operations < 3.
ExampleSet hand_examples() {
  ExampleSet set;
  set.add(V{5, 5, 7, 5}, V{0, 1, 0, 2}, 9, 1, 0, 0.0);
  set.add(V{3}, V{2}, 4, 0, 1, 1.0);
  set.add(V{7, 3, 7, 3}, V{1, 1, 1, 1}, 5, 2, 2, 2.0);
  return set;
}

void check_equal(const HostBatch& a, const HostBatch& b) {
  detail::for_each_batch_array(a, b, [](const char* name, const V& x, const V& y) {
    INFO(name);
    CHECK(x == y);
  });
}

// Session b of a batch with every index re-based to the session's own origin.
std::map<std::string, V> slice(const HostBatch& h, std::size_t b) {
  const index_t m0 = h.micro_offsets[b], m1 = h.micro_offsets[b + 1];
  const index_t k0 = h.macro_offsets[b], k1 = h.macro_offsets[b + 1];
  const index_t c0 = h.node_offsets[b], c1 = h.node_offsets[b + 1];
  const index_t e0 = h.edge_offsets[b], e1 = h.edge_offsets[b + 1];
  auto cut = [](const V& v, index_t lo, index_t hi, index_t shift) {
    V out;
    for (index_t i = lo; i < hi; ++i) out.push_back(v[static_cast<std::size_t>(i)] - shift);
    return out;
  };
  std::map<std::string, V> s;
  s["micro_items"] = cut(h.micro_items, m0, m1, 0);
  s["micro_ops"] = cut(h.micro_ops, m0, m1, 0);
  s["micro_alias"] = cut(h.micro_alias, m0, m1, c0);
  s["macro_items"] = cut(h.macro_items, k0, k1, 0);
  s["macro_alias"] = cut(h.macro_alias, k0, k1, c0);
  s["run_begin"] = cut(h.run_begin, k0, k1, m0);
  s["run_end"] = cut(h.run_end, k0, k1, m0);
  s["node_items"] = cut(h.node_items, c0, c1, 0);
  s["node_session"] = cut(h.node_session, c0, c1, static_cast<index_t>(b));
  s["node_in_offsets"] = cut(h.node_in_offsets, c0, c1 + 1, e0);
  s["node_in_edges"] = cut(h.node_in_edges, e0, e1, e0);
  s["node_out_offsets"] = cut(h.node_out_offsets, c0, c1 + 1, e0);
  s["node_out_edges"] = cut(h.node_out_edges, e0, e1, e0);
  s["edge_src"] = cut(h.edge_src, e0, e1, c0);
  s["edge_dst"] = cut(h.edge_dst, e0, e1, c0);
  s["edge_src_macro"] = cut(h.edge_src_macro, e0, e1, k0);
  s["edge_dst_macro"] = cut(h.edge_dst_macro, e0, e1, k0);
  s["targets"] = {h.targets[b]};
  s["next_ops"] = {h.next_ops[b]};
  s["example_ids"] = {h.example_ids[b]};
  s["counts"] = {m1 - m0, k1 - k0, c1 - c0, e1 - e0};
  return s;
}

struct JdExamples {
  PreparedData data;
  JdExamples() {
    PreprocessOptions o;
    o.min_item_support = 2;
    o.max_length = 40;
    data = preprocess(embsr::test::to_dataset(embsr::test::jd_appliances_sample(1000)), o);
  }
};
const JdExamples& jd() {
  static const JdExamples examples;
  return examples;
}


// The arrays are usable from kernels: in-degrees from the CSR offsets match a count over the
// edges, and every micro alias points to a node of the same item. Returns the number of mismatches.
template <class ExecutionSpace, class MemorySpace>
int count_device_mismatches(const Batch<MemorySpace>& b) {
  Kokkos::View<int*, MemorySpace> in_degree("in_degree", static_cast<std::size_t>(b.sizes.num_nodes));
  const auto edge_dst = b.edge_dst;
  Kokkos::parallel_for(
      "count_in_edges", Kokkos::RangePolicy<ExecutionSpace>(0, b.sizes.num_edges),
      KOKKOS_LAMBDA(int e) { Kokkos::atomic_add(&in_degree(edge_dst(e)), 1); });
  int wrong = 0;
  const auto in_offsets = b.node_in_offsets;
  const auto micro_alias = b.micro_alias, micro_items = b.micro_items, node_items = b.node_items;
  const index_t num_nodes = b.sizes.num_nodes;
  Kokkos::parallel_reduce(
      "check_batch", Kokkos::RangePolicy<ExecutionSpace>(0, b.sizes.num_micro),
      KOKKOS_LAMBDA(int i, int& bad) {
        if (node_items(micro_alias(i)) != micro_items(i)) ++bad;
        if (i < num_nodes && in_offsets(i + 1) - in_offsets(i) != in_degree(i)) ++bad;
      },
      wrong);
  return wrong;
}

}  // namespace

TEST_CASE("ragged batch: a small batch by hand", "[ragged]") {
  const ExampleSet set = hand_examples();
  BatchBuilder builder;
  const HostBatch h = builder.build(set, V{0, 1, 2});
  CHECK(h.micro_offsets == V{0, 4, 5, 9});
  CHECK(h.macro_offsets == V{0, 3, 4, 8});
  CHECK(h.node_offsets == V{0, 2, 3, 5});
  CHECK(h.edge_offsets == V{0, 2, 2, 5});
  CHECK(h.micro_items == V{5, 5, 7, 5, 3, 7, 3, 7, 3});
  CHECK(h.micro_ops == V{0, 1, 0, 2, 2, 1, 1, 1, 1});
  CHECK(h.micro_alias == V{0, 0, 1, 0, 2, 3, 4, 3, 4});
  CHECK(h.macro_items == V{5, 7, 5, 3, 7, 3, 7, 3});
  CHECK(h.macro_alias == V{0, 1, 0, 2, 3, 4, 3, 4});
  CHECK(h.run_begin == V{0, 2, 3, 4, 5, 6, 7, 8});
  CHECK(h.run_end == V{2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(h.node_items == V{5, 7, 3, 7, 3});
  CHECK(h.node_session == V{0, 0, 1, 2, 2});
  CHECK(h.node_in_offsets == V{0, 1, 2, 2, 3, 5});
  CHECK(h.node_in_edges == V{1, 0, 3, 2, 4});
  CHECK(h.node_out_offsets == V{0, 1, 2, 2, 4, 5});
  CHECK(h.node_out_edges == V{0, 1, 2, 4, 3});
  CHECK(h.edge_src == V{0, 1, 3, 4, 3});
  CHECK(h.edge_dst == V{1, 0, 4, 3, 4});
  CHECK(h.edge_src_macro == V{0, 1, 4, 5, 6});
  CHECK(h.edge_dst_macro == V{1, 2, 5, 6, 7});
  CHECK(h.targets == V{9, 4, 5});
  CHECK(h.next_ops == V{1, 0, 2});
  CHECK(h.example_ids == V{0, 1, 2});

  const BatchSizes s = h.sizes();
  CHECK(s.num_sessions == 3);
  CHECK(s.num_micro == 9);
  CHECK(s.num_macro == 8);
  CHECK(s.num_nodes == 5);
  CHECK(s.num_edges == 5);
  CHECK(s.max_micro == 4);
  CHECK(s.max_macro == 4);
  CHECK(s.max_nodes == 2);
  CHECK(s.max_edges == 3);
  // Runs: 2 1 1 | 1 | 1 1 1 1 -> the length-2 run first, then the others in index order; step 0
  // holds all 8 runs, step 1 the one of length 2.
  CHECK(h.run_order == V{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(h.run_step_offsets == V{0, 8, 9});
  CHECK_NOTHROW(validate_batch(h, 10, 3));

  const HostBatch empty = builder.build(set, V{});
  CHECK(empty.num_sessions() == 0);
  CHECK(empty.micro_offsets == V{0});
  CHECK(empty.node_in_offsets == V{0});
  CHECK(empty.run_order.empty());
  CHECK(empty.run_step_offsets == V{0});
  CHECK_NOTHROW(validate_batch(empty, 10, 3));
  CHECK_THROWS_WITH(builder.build(set, V{0, 3}), Contains("example id 3"));
}

TEST_CASE("ragged batch: a session packs identically whatever shares the batch", "[ragged]") {
  const ExampleSet& set = jd().data.train;
  REQUIRE(set.size() > 50);
  BatchBuilder builder;
  HostBatch h;
  for (const index_t s : {index_t(0), index_t(7), index_t(31)}) {
    builder.build(set, V{s}, h);
    const auto alone = slice(h, 0);
    // Every per-session array of the batch is covered by the slice (guards fields added later).
    // The run GRU's schedule (run_order, run_step_offsets) is batch-wide by design: it is checked
    // against a brute-force sort in "the run GRU schedule is the stable sort of the runs by length".
    h.for_each([&](const char* name, const V&) {
      const std::string field(name);
      if (field == "run_order") return;
      if (field.size() < 8 || field.substr(field.size() - 8) != "_offsets" || field == "node_in_offsets" ||
          field == "node_out_offsets")
        CHECK(alone.count(field) == 1);
    });
    const std::vector<V> companies{{s, 3, 12}, {3, s, 12, 40}, {40, 12, 3, s}, {s, s}};
    for (const V& ids : companies) {
      builder.build(set, ids, h);
      validate_batch(h, jd().data.item_vocab.size(), jd().data.op_vocab.size());
      for (std::size_t b = 0; b < ids.size(); ++b) {
        if (ids[b] != s) continue;
        auto together = slice(h, b);
        together["node_session"] = alone.at("node_session");  // the session's position differs by design
        CHECK(together == alone);
      }
    }
  }
}

TEST_CASE("ragged batch: the builder reuses its buffers (no allocation in steady state)", "[ragged]") {
  const ExampleSet& set = jd().data.train;
  BatchBuilder builder;
  HostBatch h;
  V x(64), y(48);
  std::iota(x.begin(), x.end(), 0);
  std::iota(y.begin(), y.end(), 100);
  builder.build(set, x, h);
  builder.build(set, y, h);
  builder.build(set, x, h);
  std::vector<const index_t*> before;
  h.for_each([&](const char*, const V& v) { before.push_back(v.data()); });
  const HostBatch x_copy = h;
  for (int rep = 0; rep < 3; ++rep) {
    builder.build(set, y, h);
    builder.build(set, x, h);
  }
  std::vector<const index_t*> after;
  h.for_each([&](const char*, const V& v) { after.push_back(v.data()); });
  CHECK(before == after);
  check_equal(h, x_copy);
}

TEMPLATE_LIST_TEST_CASE("ragged batch: upload to the memory space and back", "[ragged][kokkos]",
                        embsr::test::ExecutionSpaces) {
  using ExecutionSpace = TestType;
  using MemorySpace = typename ExecutionSpace::memory_space;
  BatchBuilder builder;
  const HostBatch hand = builder.build(hand_examples(), V{2, 0, 1});
  Batch<MemorySpace> batch = to_memory_space<MemorySpace>(hand);

  CHECK(batch.sizes.num_micro == 9);
  CHECK(batch.sizes.num_nodes == 5);
  CHECK(batch.micro_items.extent(0) == 9);
  CHECK(batch.node_in_offsets.extent(0) == 6);
  CHECK(batch.micro_items.label() == "embsr::Batch::micro_items");
  detail::for_each_batch_array(hand, batch, [](const char* name, const V& host, const auto& view) {
    INFO(name);
    const auto mirror = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
    REQUIRE(mirror.extent(0) == host.size());
    CHECK(V(mirror.data(), mirror.data() + mirror.extent(0)) == host);
  });
  check_equal(to_host(batch), hand);

  CHECK(count_device_mismatches<ExecutionSpace>(batch) == 0);

  // Refill in place: a large batch, then a smaller one reuses the same buffers.
  const ExampleSet& set = jd().data.train;
  V big(std::min<std::size_t>(set.size(), 200));
  std::iota(big.begin(), big.end(), 0);
  const HostBatch large = builder.build(set, big);
  batch.copy_from(large);
  check_equal(to_host(batch), large);
  CHECK(count_device_mismatches<ExecutionSpace>(batch) == 0);
  const std::size_t capacity = batch.capacity_bytes();
  const auto* data = batch.micro_items.data();
  batch.copy_from(hand);
  check_equal(to_host(batch), hand);
  CHECK(batch.capacity_bytes() == capacity);
  CHECK(batch.micro_items.data() == data);
  CHECK(batch.micro_items.extent(0) == 9);
  batch.copy_from(large);
  check_equal(to_host(batch), large);
  CHECK(batch.capacity_bytes() == capacity);
}

TEST_CASE("ragged batch: the sampler is reproducible and covers every example once per epoch", "[ragged]") {
  BatchSampler plain(10, 4, false, 1);
  REQUIRE(plain.num_batches() == 3);
  auto ids = [](Span<const index_t> s) { return V(s.begin(), s.end()); };
  CHECK(ids(plain.batch(0)) == V{0, 1, 2, 3});
  CHECK(ids(plain.batch(1)) == V{4, 5, 6, 7});
  CHECK(ids(plain.batch(2)) == V{8, 9});  // last partial batch kept
  plain.set_epoch(5);
  CHECK(ids(plain.batch(2)) == V{8, 9});

  // Known answer: epoch e is the Fisher-Yates shuffle under Rng(seed, e) (value from the
  // independent reference also used in test_random.cpp).
  BatchSampler known(10, 10, true, 9);
  CHECK(known.order() == V{4, 6, 8, 5, 0, 3, 1, 9, 7, 2});

  BatchSampler a(1003, 64, true, 42), b(1003, 64, true, 42), other_seed(1003, 64, true, 43);
  CHECK(a.num_batches() == 16);
  CHECK(a.order() == b.order());
  CHECK(a.order() != other_seed.order());
  const V epoch0 = a.order();
  a.set_epoch(1);
  CHECK(a.epoch() == 1);
  CHECK(a.order() != epoch0);
  const V epoch1 = a.order();
  b.set_epoch(7);
  b.set_epoch(1);  // an epoch's order does not depend on the epochs before it
  CHECK(b.order() == epoch1);
  a.set_epoch(0);
  CHECK(a.order() == epoch0);

  for (std::uint64_t e : {0u, 1u, 2u}) {
    a.set_epoch(e);
    V all;
    for (std::size_t i = 0; i < a.num_batches(); ++i) {
      const auto batch = a.batch(i);
      CHECK(batch.size() == (i + 1 < a.num_batches() ? 64u : 1003u - 15u * 64u));
      all.insert(all.end(), batch.begin(), batch.end());
    }
    CHECK(all == a.order());
    std::sort(all.begin(), all.end());
    V identity(1003);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(all == identity);
  }
  CHECK_THROWS_AS(a.batch(16), InvalidArgument);
  CHECK_THROWS_AS(BatchSampler(10, 0, true, 1), InvalidArgument);
  BatchSampler none(0, 8, true, 1);
  CHECK(none.num_batches() == 0);
}

TEST_CASE("ragged batch: every batch of a real epoch is valid and covers the split", "[ragged][data]") {
  const PreparedData& data = jd().data;
  const ExampleSet& set = data.train;
  BatchSampler sampler(set.size(), 64, true, 2022);
  BatchBuilder builder;
  HostBatch h;
  std::size_t micro = 0, sessions = 0;
  std::set<index_t> seen;
  for (std::size_t b = 0; b < sampler.num_batches(); ++b) {
    builder.build(set, sampler.batch(b), h);
    validate_batch(h, data.item_vocab.size(), data.op_vocab.size());
    micro += static_cast<std::size_t>(h.sizes().num_micro);
    sessions += static_cast<std::size_t>(h.num_sessions());
    for (std::size_t i = 0; i < h.example_ids.size(); ++i) {
      const auto e = static_cast<std::size_t>(h.example_ids[i]);
      seen.insert(h.example_ids[i]);
      CHECK(h.targets[i] == set.targets[e]);
      CHECK(h.next_ops[i] == set.next_ops[e]);
    }
  }
  CHECK(sessions == set.size());
  CHECK(seen.size() == set.size());
  CHECK(micro == set.num_events());
}

namespace {

// The schedule by brute force: runs stable-sorted by length, descending; count_s = runs longer
// than s; offsets are the prefix sums of the counts.
std::pair<V, V> brute_force_schedule(const HostBatch& h) {
  const std::size_t N = h.run_begin.size();
  auto length = [&](index_t k) { return h.run_end[static_cast<std::size_t>(k)] - h.run_begin[static_cast<std::size_t>(k)]; };
  V order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return length(a) > length(b); });
  index_t longest = 0;
  for (std::size_t k = 0; k < N; ++k) longest = std::max(longest, length(static_cast<index_t>(k)));
  V offsets{0};
  for (index_t s = 0; s < longest; ++s) {
    index_t count = 0;
    for (std::size_t k = 0; k < N; ++k) count += length(static_cast<index_t>(k)) > s ? 1 : 0;
    offsets.push_back(offsets.back() + count);
  }
  return {order, offsets};
}

}  // namespace

TEST_CASE("ragged batch: the run GRU schedule is the stable sort of the runs by length", "[ragged][schedule]") {
  const ExampleSet& set = jd().data.train;
  BatchBuilder builder;
  HostBatch h;
  // Whole shuffled epochs (batches of 64 and of 1), and batches mixing one long session with short ones.
  for (const std::size_t batch_size : {std::size_t(64), std::size_t(1)}) {
    BatchSampler sampler(set.size(), batch_size, true, 7);
    const std::size_t batches = std::min<std::size_t>(sampler.num_batches(), 40);
    for (std::size_t b = 0; b < batches; ++b) {
      builder.build(set, sampler.batch(b), h);
      const auto [order, offsets] = brute_force_schedule(h);
      INFO("batch " << b << " of size " << batch_size);
      CHECK(h.run_order == order);
      CHECK(h.run_step_offsets == offsets);
      CHECK(h.run_step_offsets.back() == h.sizes().num_micro);  // the packed rows tile the micro-behaviors
    }
  }
  ExampleSet mixed;
  mixed.add(V{1, 1, 1, 1, 1, 2, 2, 3}, V{0, 1, 2, 0, 1, 2, 0, 1}, 4, 0, 0, 0.0);
  mixed.add(V{5}, V{1}, 4, 0, 1, 1.0);
  mixed.add(V{6, 6, 7, 7}, V{0, 0, 1, 1}, 4, 0, 2, 2.0);
  builder.build(mixed, V{1, 0, 2, 0}, h);
  const auto [order, offsets] = brute_force_schedule(h);
  CHECK(h.run_order == order);
  CHECK(h.run_step_offsets == offsets);
  // Runs: [5] | [1x5] [2x2] [3] | [6x2] [7x2] | [1x5] [2x2] [3] -> lengths 1 5 2 1 2 2 5 2 1.
  CHECK(h.run_order == V{1, 6, 2, 4, 5, 7, 0, 3, 8});
  CHECK(h.run_step_offsets == V{0, 9, 15, 17, 19, 21});
  CHECK_NOTHROW(validate_batch(h, 10, 3));
}

}  // namespace test_batch_builder
