// Neighbourhood models (model/session_knn.hpp: sknn, v-sknn, stan, vstan, vstan-ops) on synthetic
// sessions of realistic shape, one core unless stated:
//   1. index build: build_knn_index alone, and each model's fit (index + the per-model tables it
//      derives); memory of the index's arrays per indexed micro-behavior and per (session, item)
//      entry, the derived tables, and the resident-memory growth that fitting causes;
//   2. batch-1 serving latency of top_k(k = 20) through the registry's SessionModel<Kokkos::Serial>
//      (as embsr-recommend serves): p50 / p90 / p99 / mean / max over --requests held-out session
//      prefixes after --warmup untimed ones, every request timed with std::chrono::steady_clock
//      around the model call alone (its batch built beforehand); the models are interleaved: in
//      every round each model serves one request, in rotated order, so that machine noise hits all
//      of them alike, and each model serves a different request of the round (every model serves
//      every request once over the rounds), so no call finds its session's index rows already
//      cached by another model's call; one more entry, "<model> e2e", times what embsr-recommend
//      does per request: the one-session ExampleSet, BatchBuilder::build, Batch::copy_from, top_k,
//      fence;
//   3. batch throughput: top_k over one batch of --batch held-out sessions on Kokkos::Serial and on
//      Kokkos::OpenMP at its default thread count, alternated, median of --batch-reps.
//
//   bench_knn [--sessions 1e5,1e6 (repeatable)] [--requests 2000] [--warmup 200] [--items 100000]
//             [--ops 10] [--zipf 1.0] [--mean-length 8] [--micro-mean 2.5] [--revisit 0.25]
//             [--max-length 50] [--k 20] [--seed 2024] [--models sknn,v-sknn,stan,vstan,vstan-ops]
//             [--e2e-model vstan-ops] [--batch 1000] [--batch-reps 3] [--no-latency]
//             [--no-throughput] [--json FILE]
//
// Synthetic sessions (all randomness from core/random.hpp's Rng: the same seed gives the same
// sessions on every platform; see synthetic_help() below, also printed by --help):
//   item popularity  Zipf: the item of popularity rank r (0-based) has weight 1 / (r + 1)^zipf; ranks
//                    are mapped to ids 0..V-1 by a Fisher-Yates shuffle (embsr::shuffle) under
//                    Rng(seed, 2), so popularity is unrelated to the id. A draw: u = Rng::uniform()
//                    * total weight, the first rank whose cumulative weight exceeds u.
//                    (zipf = 1 uses 1 / (r + 1), correctly rounded everywhere; other exponents call
//                    std::pow, whose last bit may differ between math libraries.)
//   operations       the same Zipf law over the --ops operations, exponent 1, operation o (0-based)
//                    ranked o: operation 0 is the most frequent (as "view" is in real logs).
//   session length   L macro items, target included: L = 2 + G, G geometric on {0, 1, ..} with
//                    P(G >= g) = c^g, c = (mean_length - 2) / (mean_length - 1): mean L =
//                    mean_length; capped at 200. Continuation draws compare Rng::next() >> 32 with
//                    the integer floor(c * 2^32).
//   macro items      macro item 1 is a popularity draw; macro item j > 1 revisits an earlier macro
//                    item of the session other than the previous one (a uniform pick among macro
//                    positions 1..j-2; should that item equal the previous one, a popularity draw
//                    instead), with probability --revisit (when j > 2), else is a popularity draw
//                    redrawn while it equals the previous macro item (consecutive macro items differ).
//   micro-behaviors  per macro item 1 + G' with P(G' >= g) = c'^g, c' = (micro_mean - 1) / micro_mean
//                    (mean micro_mean; capped at 64), each with an operation drawn from the operation law.
//   training example of session s (Rng(seed, 0)): input = the micro-behaviors of macro items
//                    1..L-1, cut to the last --max-length; target = macro item L, next operation =
//                    the operation of its first micro-behavior; order key s (s later = more recent).
//   request (Rng(seed, 1), the same law, sessions never indexed): a prefix, j uniform in [1, L-1]:
//                    input = macro items 1..j (cut to the last --max-length), target = macro item j+1.
#include <embsr/embsr.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const char* synthetic_help() {
  return "Synthetic sessions (core/random.hpp's Rng: the same --seed gives the same sessions everywhere):\n"
         "  item popularity  Zipf: popularity rank r (0-based) has weight 1/(r+1)^zipf; ranks mapped to item ids by a\n"
         "                   Fisher-Yates shuffle under Rng(seed, 2); a draw = first rank whose cumulative weight\n"
         "                   exceeds Rng::uniform() * total (zipf 1: exact 1/(r+1); else std::pow)\n"
         "  operations       Zipf exponent 1 over the --ops operations (operation 0 the most frequent)\n"
         "  session length   L = 2 + G macro items (target included), P(G >= g) = c^g, c = (mean-2)/(mean-1), so mean L =\n"
         "                   --mean-length; capped at 200; a continuation is Rng::next()>>32 < floor(c 2^32)\n"
         "  macro items      item 1 a popularity draw; item j > 1 revisits a uniform earlier macro item other than the\n"
         "                   previous one with probability --revisit, else a popularity draw redrawn while it equals\n"
         "                   the previous macro item\n"
         "  micro-behaviors  1 + G' per macro item (at most 64), P(G' >= g) = c'^g, c' = (micro_mean-1)/micro_mean (mean --micro-mean),\n"
         "                   each with an operation from the operation law\n"
         "  training session s (Rng(seed, 0)): input = micro-behaviors of macro items 1..L-1, last --max-length kept;\n"
         "                   target = macro item L, next op = its first micro-behavior's; order key s (later = newer)\n"
         "  request (Rng(seed, 1), never indexed): prefix j uniform in [1, L-1]: input = macro items 1..j (last\n"
         "                   --max-length kept), target = macro item j+1\n";
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}
double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// CPU time of the calling thread: a request's wall time minus this is time the thread was not
// running (preempted by other processes), which says whether a slow request was slow by its work.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Share of calls during which the thread was off its core for more than 0.1 ms (wall - CPU time).
double preempted_pct(const std::vector<double>& wall, const std::vector<double>& cpu) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < wall.size(); ++i) n += wall[i] - cpu[i] > 1e-4 ? 1 : 0;
  return wall.empty() ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(wall.size());
}

double resident_mib() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(f >> pages_total >> pages_resident)) return 0.0;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// ---- the synthetic sessions (see the top of the file) ----

class ZipfSampler {
 public:
  // Ranks 0..n-1 with weight 1/(r+1)^s, mapped through `ids` (ids[r] = the id of rank r).
  ZipfSampler(std::size_t n, double s, std::vector<embsr::index_t> ids) : ids_(std::move(ids)) {
    cumulative_.resize(n);
    double total = 0.0;
    for (std::size_t r = 0; r < n; ++r) {
      total += s == 1.0 ? 1.0 / static_cast<double>(r + 1) : 1.0 / std::pow(static_cast<double>(r + 1), s);
      cumulative_[r] = total;
    }
  }
  embsr::index_t operator()(embsr::Rng& rng) const {
    const double u = rng.uniform() * cumulative_.back();
    auto r = static_cast<std::size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
    return ids_[std::min(r, ids_.size() - 1)];
  }

 private:
  std::vector<double> cumulative_;
  std::vector<embsr::index_t> ids_;
};

struct SyntheticLaw {
  int items = 100000, ops = 10, max_length = 50;
  double zipf = 1.0, mean_length = 8.0, micro_mean = 2.5, revisit = 0.25;
  std::uint64_t seed = 2024;
};

class SessionGenerator {
 public:
  explicit SessionGenerator(const SyntheticLaw& law)
      : law_(law),
        items_(static_cast<std::size_t>(law.items), law.zipf, item_permutation(law)),
        ops_(static_cast<std::size_t>(law.ops), 1.0, identity(law.ops)),
        length_threshold_(threshold((law.mean_length - 2.0) / (law.mean_length - 1.0))),
        micro_threshold_(threshold((law.micro_mean - 1.0) / law.micro_mean)),
        revisit_threshold_(threshold(law.revisit)) {}

  // Training sessions s = 0..count-1 (stream 0), or request prefixes (stream 1).
  embsr::ExampleSet make(int count, bool requests) const {
    embsr::Rng rng(law_.seed, requests ? 1 : 0);
    embsr::ExampleSet set;
    set.reserve(static_cast<std::size_t>(count),
                static_cast<std::size_t>(static_cast<double>(count) * (law_.mean_length - 1.0) * law_.micro_mean * 1.1));
    std::vector<embsr::index_t> macro, items, ops, first_op;
    for (int s = 0; s < count; ++s) {
      int L = 2;
      while (L < 200 && continues(rng, length_threshold_)) ++L;
      macro.clear();
      for (int j = 0; j < L; ++j) {
        embsr::index_t v;
        if (j >= 2 && continues(rng, revisit_threshold_)) {
          // a uniform earlier macro item other than the previous one (positions 0..j-2)
          v = macro[static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(j - 1)))];
          if (v == macro.back()) v = draw_new(rng, macro.back());  // the same item twice apart: not a macro step
        } else {
          v = j == 0 ? items_(rng) : draw_new(rng, macro.back());
        }
        macro.push_back(v);
      }
      const int cut = requests ? 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(L - 1))) : L - 1;
      items.clear();
      ops.clear();
      embsr::index_t target = macro[static_cast<std::size_t>(cut)], next_op = 0;
      for (int j = 0; j < L; ++j) {
        int micro = 1;
        while (micro < 64 && continues(rng, micro_threshold_)) ++micro;
        for (int i = 0; i < micro; ++i) {
          const embsr::index_t o = ops_(rng);
          if (j < cut) {
            items.push_back(macro[static_cast<std::size_t>(j)]);
            ops.push_back(o);
          } else if (j == cut && i == 0) {
            next_op = o;
          }
        }
      }
      const std::size_t keep = std::min(items.size(), static_cast<std::size_t>(law_.max_length));
      const std::size_t from = items.size() - keep;
      set.add(embsr::Span<const embsr::index_t>(items.data() + from, keep), embsr::Span<const embsr::index_t>(ops.data() + from, keep),
              target, next_op, s, static_cast<double>(s));
    }
    return set;
  }

 private:
  static std::uint64_t threshold(double c) {
    c = std::min(std::max(c, 0.0), 1.0);
    return static_cast<std::uint64_t>(c * 4294967296.0);
  }
  static bool continues(embsr::Rng& rng, std::uint64_t threshold) { return (rng.next() >> 32) < threshold; }
  static std::vector<embsr::index_t> identity(int n) {
    std::vector<embsr::index_t> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
  }
  static std::vector<embsr::index_t> item_permutation(const SyntheticLaw& law) {
    std::vector<embsr::index_t> v = identity(law.items);
    embsr::Rng rng(law.seed, 2);
    embsr::shuffle(embsr::Span<embsr::index_t>(v.data(), v.size()), rng);
    return v;
  }
  embsr::index_t draw_new(embsr::Rng& rng, embsr::index_t previous) const {
    embsr::index_t v = items_(rng);
    while (v == previous && law_.items > 1) v = items_(rng);
    return v;
  }

  SyntheticLaw law_;
  ZipfSampler items_, ops_;
  std::uint64_t length_threshold_, micro_threshold_, revisit_threshold_;
};

struct SetShape {
  double micro = 0, macro = 0, distinct = 0, top1_share = 0;  // means per example; share of events on the top 1% items
};
SetShape shape_of(const embsr::ExampleSet& set, int num_items) {
  SetShape out;
  std::vector<std::int64_t> count(static_cast<std::size_t>(num_items), 0);
  std::vector<std::uint32_t> mark(static_cast<std::size_t>(num_items), 0);
  for (std::size_t e = 0; e < set.size(); ++e) {
    const auto items = set.input_items(e);
    out.micro += static_cast<double>(items.size());
    embsr::index_t prev = -1;
    for (const embsr::index_t v : items) {
      if (v != prev) out.macro += 1;
      prev = v;
      ++count[static_cast<std::size_t>(v)];
      if (mark[static_cast<std::size_t>(v)] != e + 1) mark[static_cast<std::size_t>(v)] = static_cast<std::uint32_t>(e + 1), out.distinct += 1;
    }
  }
  std::sort(count.begin(), count.end(), std::greater<std::int64_t>());
  const std::size_t top = std::max<std::size_t>(1, count.size() / 100);
  std::int64_t on_top = 0;
  for (std::size_t i = 0; i < top; ++i) on_top += count[i];
  const auto n = static_cast<double>(std::max<std::size_t>(1, set.size()));
  out.top1_share = set.num_events() ? static_cast<double>(on_top) / static_cast<double>(set.num_events()) : 0.0;
  out.micro /= n, out.macro /= n, out.distinct /= n;
  return out;
}

// ---- models ----

embsr::KnnConfig knn_config(const std::string& name, const embsr::ModelOptions& given) {
  using embsr::KnnKind;
  const embsr::ModelOptions o = embsr::complete_model_options(name, given);
  if (name == "sknn") return embsr::KnnSpec<KnnKind::Sknn>::config_of(o);
  if (name == "v-sknn") return embsr::KnnSpec<KnnKind::VSknn>::config_of(o);
  if (name == "stan") return embsr::KnnSpec<KnnKind::Stan>::config_of(o);
  if (name == "vstan") return embsr::KnnSpec<KnnKind::Vstan>::config_of(o);
  if (name == "vstan-ops") return embsr::KnnSpec<KnnKind::VstanOps>::config_of(o);
  throw embsr::InvalidArgument("bench_knn: '" + name + "' is not a neighbourhood model (sknn, v-sknn, stan, vstan, vstan-ops)");
}

template <class T>
std::size_t bytes_of(const std::vector<T>& v) { return v.size() * sizeof(T); }
template <class T>
std::size_t capacity_bytes_of(const std::vector<T>& v) { return v.capacity() * sizeof(T); }

struct IndexMemory {
  std::size_t sessions = 0, entries = 0, events = 0;  // events = input micro-behaviors + targets indexed
  std::size_t bytes = 0, capacity_bytes = 0;          // the KnnIndex arrays (sizes; allocated capacities)
  std::size_t session_bytes = 0, entry_bytes = 0, item_bytes = 0;
};
IndexMemory index_memory(const embsr::KnnIndex& ix, const embsr::ExampleSet& train) {
  IndexMemory m;
  m.sessions = ix.num_sessions();
  m.entries = ix.num_entries();
  m.events = train.num_events() + train.size();
  m.session_bytes = bytes_of(ix.session_offsets) + bytes_of(ix.session_length) + bytes_of(ix.session_time);
  m.entry_bytes = bytes_of(ix.entry_item) + bytes_of(ix.entry_last_pos) + bytes_of(ix.entry_op_mask);
  m.item_bytes = bytes_of(ix.item_offsets) + bytes_of(ix.item_sessions);
  m.bytes = m.session_bytes + m.entry_bytes + m.item_bytes + bytes_of(ix.op_hits) + bytes_of(ix.op_uses);
  m.capacity_bytes = capacity_bytes_of(ix.session_offsets) + capacity_bytes_of(ix.session_length) +
                     capacity_bytes_of(ix.session_time) + capacity_bytes_of(ix.entry_item) +
                     capacity_bytes_of(ix.entry_last_pos) + capacity_bytes_of(ix.entry_op_mask) +
                     capacity_bytes_of(ix.item_offsets) + capacity_bytes_of(ix.item_sessions) +
                     capacity_bytes_of(ix.op_hits) + capacity_bytes_of(ix.op_uses);
  return m;
}

// The tables KnnScorer derives from the index for a configuration (model/session_knn.hpp derive()),
// and one thread's workspace (detail::KnnWorkspace::ensure), in bytes.
std::size_t derived_bytes(const embsr::KnnConfig& c, const IndexMemory& m, int longest) {
  std::size_t b = 8 * m.sessions;                                              // session_norm_
  if (c.lambda_snh > 0.0) b += 8 * m.sessions;                                 // session_decay_
  if (c.use_operations) b += 8 * m.entries;                                    // entry_weight_
  if (c.lambda_idf > 0.0) b += 8 * static_cast<std::size_t>(c.num_items);      // idf_
  if (c.lambda_inh > 0.0) b += 8 * static_cast<std::size_t>(longest);          // inh_table_
  return b + 8 * static_cast<std::size_t>(c.num_ops);
}
std::size_t workspace_bytes(const embsr::KnnConfig& c, const IndexMemory& m) {
  return 4 * m.sessions + 40 * static_cast<std::size_t>(c.num_items);
}

struct ModelRun {
  std::string name;
  double fit_s = 0, rss_growth_mib = 0;
  std::size_t derived = 0, workspace = 0;
  std::vector<double> latency, cpu;  // seconds: wall (steady_clock), and the thread's CPU time
  std::vector<int> request;          // the request of each timed call
  double serial_batch_s = 0, openmp_batch_s = 0, openmp_fit_s = 0;
};

template <class Exec>
void run_top_k(embsr::SessionModel<Exec>& model, const embsr::Batch<typename Exec::memory_space>& batch, int k,
               typename embsr::SessionModel<Exec>::ids_view& ids, typename embsr::SessionModel<Exec>::values_view& values,
               std::size_t& checksum) {
  model.top_k(batch, k, ids, values);
  model.execution_space_instance().fence();
  checksum += static_cast<std::size_t>(ids(0, 0));
}

// Where a request's time goes: a replica of KnnScorer::score and SessionKnnModel::top_k
// (model/session_knn.hpp) with SKNN's formulas (cosine over item sets; the other models add
// per-entry table lookups and exp-free multiplications to the same loops), each phase timed with
// steady_clock. Same index, same requests, same data structures (marks by stamp, no allocation).
struct PhaseProfile {
  static constexpr int kPhases = 6;
  static const char* name(int p) {
    static const char* names[kPhases] = {"session", "candidates", "sample (nth_element)", "similarities",
                                         "neighbours (partial_sort)", "item scores + top-k"};
    return names[p];
  }
  std::vector<std::array<double, kPhases>> per_request;
};

class ScoreReplica {
 public:
  ScoreReplica(const embsr::KnnIndex& ix, int sample_size, int neighbours)
      : ix_(ix), m_(sample_size), k_(neighbours), session_mark_(ix.num_sessions(), 0),
        item_mark_(static_cast<std::size_t>(ix.num_items), 0), touched_mark_(static_cast<std::size_t>(ix.num_items), 0),
        accumulator_(static_cast<std::size_t>(ix.num_items), 0.0) {}

  std::array<double, PhaseProfile::kPhases> run(embsr::Span<const embsr::index_t> items, int top, std::size_t& checksum) {
    std::array<double, PhaseProfile::kPhases> t{};
    auto lap = [&, last = Clock::now()](int phase) mutable {
      const auto now = Clock::now();
      t[static_cast<std::size_t>(phase)] = std::chrono::duration<double>(now - last).count();
      last = now;
    };
    ++stamp_;
    current_.clear();
    for (const embsr::index_t v : items)
      if (item_mark_[static_cast<std::size_t>(v)] != stamp_) item_mark_[static_cast<std::size_t>(v)] = stamp_, current_.push_back(v);
    const double norm_c = std::sqrt(static_cast<double>(current_.size()));
    lap(0);
    candidates_.clear();
    for (const std::int32_t v : current_) {
      const std::int64_t begin = ix_.item_offsets[static_cast<std::size_t>(v)], end = ix_.item_offsets[static_cast<std::size_t>(v) + 1];
      for (std::int64_t x = begin; x < std::min(end, begin + m_); ++x) {
        const std::int32_t n = ix_.item_sessions[static_cast<std::size_t>(x)];
        if (session_mark_[static_cast<std::size_t>(n)] != stamp_) session_mark_[static_cast<std::size_t>(n)] = stamp_, candidates_.push_back(n);
      }
    }
    lap(1);
    if (static_cast<std::int64_t>(candidates_.size()) > m_) {
      std::nth_element(candidates_.begin(), candidates_.begin() + m_, candidates_.end(), std::greater<std::int32_t>());
      candidates_.resize(static_cast<std::size_t>(m_));
    }
    lap(2);
    neighbours_.clear();
    for (const std::int32_t n : candidates_) {
      double dot = 0.0;
      const auto b = static_cast<std::size_t>(ix_.session_offsets[static_cast<std::size_t>(n)]),
                 e = static_cast<std::size_t>(ix_.session_offsets[static_cast<std::size_t>(n) + 1]);
      for (std::size_t x = b; x < e; ++x)
        if (item_mark_[static_cast<std::size_t>(ix_.entry_item[x])] == stamp_) dot += 1.0;
      const double sim = dot / (norm_c * std::sqrt(static_cast<double>(e - b)));
      if (sim > 0.0) neighbours_.emplace_back(sim, n);
    }
    lap(3);
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(k_), neighbours_.size());
    std::partial_sort(neighbours_.begin(), neighbours_.begin() + static_cast<std::ptrdiff_t>(k), neighbours_.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second > b.second); });
    lap(4);
    touched_.clear();
    for (std::size_t j = 0; j < k; ++j) {
      const std::int32_t n = neighbours_[j].second;
      for (auto x = static_cast<std::size_t>(ix_.session_offsets[static_cast<std::size_t>(n)]);
           x < static_cast<std::size_t>(ix_.session_offsets[static_cast<std::size_t>(n) + 1]); ++x) {
        const auto v = static_cast<std::size_t>(ix_.entry_item[x]);
        if (touched_mark_[v] != stamp_) touched_mark_[v] = stamp_, accumulator_[v] = 0.0, touched_.push_back(static_cast<std::int32_t>(v));
        accumulator_[v] += neighbours_[j].first;
      }
    }
    ranked_.clear();
    for (const std::int32_t v : touched_) ranked_.emplace_back(accumulator_[static_cast<std::size_t>(v)], v);
    const auto take = std::min<std::size_t>(static_cast<std::size_t>(top), ranked_.size());
    std::partial_sort(ranked_.begin(), ranked_.begin() + static_cast<std::ptrdiff_t>(take), ranked_.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    if (take > 0) checksum += static_cast<std::size_t>(ranked_[0].second);
    lap(5);
    return t;
  }

 private:
  const embsr::KnnIndex& ix_;
  std::int64_t m_;
  int k_;
  std::uint32_t stamp_ = 0;
  std::vector<std::uint32_t> session_mark_, item_mark_, touched_mark_;
  std::vector<double> accumulator_;
  std::vector<std::int32_t> current_, candidates_, touched_;
  std::vector<std::pair<double, std::int32_t>> neighbours_, ranked_;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ','))
    if (!part.empty()) out.push_back(part);
  return out;
}

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: bench_knn [--sessions N[,N..]] (repeatable; default 1e5,1e6) [--requests 2000] [--warmup 200]\n"
               "                 [--items 100000] [--ops 10] [--zipf 1.0] [--mean-length 8] [--micro-mean 2.5]\n"
               "                 [--revisit 0.25] [--max-length 50] [--k 20] [--seed 2024]\n"
               "                 [--models sknn,v-sknn,stan,vstan,vstan-ops] [--e2e-model vstan-ops (none: off)]\n"
               "                 [--batch 1000] [--batch-reps 3] [--no-latency] [--no-throughput] [--json FILE]\n"
               "Neighbourhood models with their default options (k 100, sample_size 500, recent sampling): index build\n"
               "time and memory (Kokkos::Serial), batch-1 top-k latency (Kokkos::Serial, models round-robin per request),\n"
               "batch throughput (Kokkos::Serial vs Kokkos::OpenMP at its default thread count).\n\n%s",
               synthetic_help());
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  SyntheticLaw law;
  std::vector<long> sizes;
  int requests = 2000, warmup = 200, k = 20, batch_size = 1000, batch_reps = 3;
  std::vector<std::string> models{"sknn", "v-sknn", "stan", "vstan", "vstan-ops"};
  std::string e2e_model = "vstan-ops", json_path;
  bool latency_on = true, throughput_on = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto text = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_knn: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&]() {
      const std::string t = text();
      char* end = nullptr;
      const double v = std::strtod(t.c_str(), &end);
      if (end == t.c_str() || *end != '\0') {
        std::fprintf(stderr, "bench_knn: %s: '%s' is not a number\n", a.c_str(), t.c_str());
        std::exit(2);
      }
      return v;
    };
    if (a == "--sessions") {
      for (const std::string& s : split_list(text())) sizes.push_back(static_cast<long>(std::strtod(s.c_str(), nullptr)));
    } else if (a == "--requests") requests = static_cast<int>(number());
    else if (a == "--warmup") warmup = static_cast<int>(number());
    else if (a == "--items") law.items = static_cast<int>(number());
    else if (a == "--ops") law.ops = static_cast<int>(number());
    else if (a == "--zipf") law.zipf = number();
    else if (a == "--mean-length") law.mean_length = number();
    else if (a == "--micro-mean") law.micro_mean = number();
    else if (a == "--revisit") law.revisit = number();
    else if (a == "--max-length") law.max_length = static_cast<int>(number());
    else if (a == "--k") k = static_cast<int>(number());
    else if (a == "--seed") law.seed = static_cast<std::uint64_t>(number());
    else if (a == "--models") models = split_list(text());
    else if (a == "--e2e-model") e2e_model = text();
    else if (a == "--batch") batch_size = static_cast<int>(number());
    else if (a == "--batch-reps") batch_reps = static_cast<int>(number());
    else if (a == "--no-latency") latency_on = false;
    else if (a == "--no-throughput") throughput_on = false;
    else if (a == "--json") json_path = text();
    else if (a == "-h" || a == "--help") usage(0);
    else if (a.rfind("--kokkos", 0) != 0) {
      std::fprintf(stderr, "bench_knn: unknown argument '%s'\n", a.c_str());
      usage(2);
    }
  }
  if (sizes.empty()) sizes = {100000, 1000000};
  for (const long n : sizes)
    if (n < 1 || n >= INT32_MAX) {
      std::fprintf(stderr, "bench_knn: --sessions must be in [1, 2^31 - 1)\n");
      return 2;
    }
  if (requests < 1 || warmup < 0 || k < 1 || batch_size < 1 || batch_reps < 1 || law.items < 2 || law.ops < 1 ||
      law.ops > embsr::kKnnMaxOperations || law.max_length < 1 || !(law.mean_length >= 2.0) || !(law.micro_mean >= 1.0) ||
      !(law.revisit >= 0.0 && law.revisit <= 1.0) || !(law.zipf >= 0.0) || models.empty()) {
    std::fprintf(stderr, "bench_knn: invalid arguments (--requests >= 1, --warmup >= 0, --k >= 1, --items >= 2, --ops in "
                         "[1, 64], --mean-length >= 2, --micro-mean >= 1, --revisit in [0, 1], --zipf >= 0)\n");
    return 2;
  }
  const bool e2e_on = latency_on && std::find(models.begin(), models.end(), e2e_model) != models.end();

  embsr::ModelOptions options;
  options.set("num_items", law.items).set("num_ops", law.ops).set("max_length", law.max_length);
  std::vector<embsr::KnnConfig> configs;
  try {
    for (const auto& name : models) configs.push_back(knn_config(name, options));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  using Serial = Kokkos::Serial;
  using HostMem = Serial::memory_space;
  const SessionGenerator generator(law);
  const int request_count = warmup + requests;
  const embsr::ExampleSet held_out = generator.make(std::max(request_count, batch_size), true);
  const SetShape request_shape = shape_of(held_out, law.items);
#if defined(KOKKOS_ENABLE_OPENMP)
  const int omp_threads = Kokkos::OpenMP().concurrency();
#else
  const int omp_threads = 0;
#endif
  std::printf("bench_knn: |V| %d, |O| %d, zipf %.2f, mean L %.1f macro items, %.1f micro per macro item, revisit %.2f, "
              "max_length %d, seed %llu; top-%d; default model options (k 100, sample_size 500, recent)\n",
              law.items, law.ops, law.zipf, law.mean_length, law.micro_mean, law.revisit, law.max_length,
              static_cast<unsigned long long>(law.seed), k);
  std::printf("requests: %d timed + %d warm-up held-out prefixes (mean %.1f micro-behaviors, %.1f macro, %.1f distinct items); "
              "OpenMP threads %d\n\n",
              requests, warmup, request_shape.micro, request_shape.macro, request_shape.distinct, omp_threads);

  std::ostringstream json;
  json << "{\"bench\": \"bench_knn\", \"items\": " << law.items << ", \"ops\": " << law.ops << ", \"zipf\": " << law.zipf
       << ", \"mean_length\": " << law.mean_length << ", \"micro_mean\": " << law.micro_mean << ", \"revisit\": " << law.revisit
       << ", \"max_length\": " << law.max_length << ", \"seed\": " << law.seed << ", \"k\": " << k << ", \"requests\": " << requests
       << ", \"warmup\": " << warmup << ", \"openmp_threads\": " << omp_threads << ", \"runs\": [";

  std::size_t checksum = 0;
  for (std::size_t si = 0; si < sizes.size(); ++si) {
    const int S = static_cast<int>(sizes[si]);
    auto t0 = Clock::now();
    embsr::ExampleSet train = generator.make(S, false);
    const double gen_s = seconds_since(t0);
    const SetShape train_shape = shape_of(train, law.items);

    // 1. The index alone, and its memory.
    const double rss_before_index = resident_mib();
    t0 = Clock::now();
    IndexMemory mem;
    int longest = 1;
    std::vector<std::int64_t> document_frequency;
    double index_s = 0, index_rss_mib = 0;
    std::unique_ptr<embsr::KnnIndex> kept;  // for the time split (latency phase)
    {
      auto ixp = std::make_unique<embsr::KnnIndex>(embsr::build_knn_index(train, law.items, law.ops));
      const embsr::KnnIndex& ix = *ixp;
      index_s = seconds_since(t0);
      index_rss_mib = resident_mib() - rss_before_index;
      mem = index_memory(ix, train);
      for (const std::int32_t l : ix.session_length) longest = std::max(longest, l);
      document_frequency.resize(static_cast<std::size_t>(law.items));
      for (int v = 0; v < law.items; ++v) document_frequency[static_cast<std::size_t>(v)] = ix.document_frequency(v);
      if (latency_on) kept = std::move(ixp);
    }
    std::printf("== %d indexed sessions (generated in %.2f s): mean input %.1f micro-behaviors, %.1f macro items, %.1f distinct "
                "items; top 1%% of items hold %.0f%% of the events\n",
                S, gen_s, train_shape.micro, train_shape.macro, train_shape.distinct, 100 * train_shape.top1_share);
    std::printf("index: %zu sessions, %zu (session, item) entries (%.2f per session), %zu micro-behaviors indexed (inputs + targets)\n",
                mem.sessions, mem.entries, static_cast<double>(mem.entries) / static_cast<double>(mem.sessions), mem.events);
    std::printf("build_knn_index: %.3f s (%.0f ns per micro-behavior); arrays %.1f MiB (sessions %.1f, entries %.1f, item lists "
                "%.1f), allocated %.1f MiB; resident growth %.1f MiB\n",
                index_s, 1e9 * index_s / static_cast<double>(mem.events), mem.bytes / 1048576.0, mem.session_bytes / 1048576.0,
                mem.entry_bytes / 1048576.0, mem.item_bytes / 1048576.0, mem.capacity_bytes / 1048576.0, index_rss_mib);
    std::printf("bytes per indexed micro-behavior %.2f (allocated %.2f), per (session, item) entry %.2f (allocated %.2f), per "
                "session %.1f\n",
                static_cast<double>(mem.bytes) / static_cast<double>(mem.events),
                static_cast<double>(mem.capacity_bytes) / static_cast<double>(mem.events),
                static_cast<double>(mem.bytes) / static_cast<double>(mem.entries),
                static_cast<double>(mem.capacity_bytes) / static_cast<double>(mem.entries),
                static_cast<double>(mem.bytes) / static_cast<double>(mem.sessions));

    // Fit every model (Kokkos::Serial, through the registry).
    std::vector<ModelRun> runs(models.size());
    std::vector<std::unique_ptr<embsr::SessionModel<Serial>>> serial(models.size());
    for (std::size_t m = 0; m < models.size(); ++m) {
      runs[m].name = models[m];
      serial[m] = embsr::make_model<Serial>(models[m], options);
      const double before = resident_mib();
      t0 = Clock::now();
      serial[m]->fit(train);
      runs[m].fit_s = seconds_since(t0);
      runs[m].rss_growth_mib = resident_mib() - before;
      serial[m]->freeze();
      runs[m].derived = derived_bytes(configs[m], mem, longest);
      runs[m].workspace = workspace_bytes(configs[m], mem);
    }

    // 2. Batch-1 latency.
    std::vector<double> e2e, e2e_cpu;
    if (latency_on) {
      std::vector<embsr::Batch<HostMem>> batches(static_cast<std::size_t>(request_count));
      {
        embsr::BatchBuilder builder;
        embsr::HostBatch host;
        for (int r = 0; r < request_count; ++r) {
          const embsr::index_t id = r;
          builder.build(held_out, embsr::Span<const embsr::index_t>(&id, 1), host);
          batches[static_cast<std::size_t>(r)].copy_from(host);
        }
      }
      const std::size_t M = models.size(), slots = M + (e2e_on ? 1 : 0);
      const std::size_t e2e_index =
          static_cast<std::size_t>(std::find(models.begin(), models.end(), e2e_model) - models.begin());
      std::vector<embsr::SessionModel<Serial>::ids_view> ids(M);
      std::vector<embsr::SessionModel<Serial>::values_view> values(M);
      // embsr-recommend's per-request state (serve/recommender.hpp): builder and buffers reused.
      embsr::BatchBuilder e2e_builder;
      embsr::HostBatch e2e_host;
      embsr::Batch<HostMem> e2e_batch;
      embsr::SessionModel<Serial>::ids_view e2e_ids;
      embsr::SessionModel<Serial>::values_view e2e_values;
      for (auto& run : runs) run.latency.reserve(static_cast<std::size_t>(requests));
      e2e.reserve(static_cast<std::size_t>(requests));
      // Round r: every entry serves one request, the entries in rotated order; entry `slot` serves
      // request (r + slot * n / slots) mod n of the warm-up or the timed requests (n of them), so
      // that over the rounds every entry serves every request once, and consecutive calls score
      // different sessions (no entry finds the caches warmed by another one's call on its session).
      for (int round = 0; round < request_count; ++round) {
        const bool timed = round >= warmup;
        const int first = timed ? warmup : 0, n = timed ? requests : warmup;
        const int rr = round - first;
        for (std::size_t j = 0; j < slots; ++j) {
          const std::size_t slot = (static_cast<std::size_t>(round) + j) % slots;
          const int r = first + static_cast<int>((static_cast<std::size_t>(rr) + slot * static_cast<std::size_t>(n) / slots) %
                                                 static_cast<std::size_t>(n));
          const double c0 = thread_cpu_seconds();
          if (slot < M) {
            const auto t = Clock::now();
            run_top_k(*serial[slot], batches[static_cast<std::size_t>(r)], k, ids[slot], values[slot], checksum);
            const double dt = seconds_since(t);
            const double dc = thread_cpu_seconds() - c0;
            if (timed) runs[slot].latency.push_back(dt), runs[slot].cpu.push_back(dc), runs[slot].request.push_back(r);
          } else {
            const auto t = Clock::now();
            embsr::ExampleSet one;
            const auto e = static_cast<std::size_t>(r);
            one.add(held_out.input_items(e), held_out.input_ops(e), 0, held_out.input_ops(e).back(), 0, 0.0);
            const embsr::index_t id = 0;
            e2e_builder.build(one, embsr::Span<const embsr::index_t>(&id, 1), e2e_host);
            e2e_batch.copy_from(e2e_host);
            run_top_k(*serial[e2e_index], e2e_batch, k, e2e_ids, e2e_values, checksum);
            const double dt = seconds_since(t);
            const double dc = thread_cpu_seconds() - c0;
            if (timed) e2e.push_back(dt), e2e_cpu.push_back(dc);
          }
        }
      }
    }

    // Time split of the replica over the same timed requests (after a warm-up pass).
    PhaseProfile profile;
    if (latency_on && kept) {
      ScoreReplica replica(*kept, configs.front().sample_size, configs.front().k);
      for (int r = 0; r < warmup; ++r) replica.run(held_out.input_items(static_cast<std::size_t>(r)), k, checksum);
      // Same interleaving as the models' calls: consecutive requests far apart.
      for (int i = 0; i < requests; ++i) {
        const int r = warmup + static_cast<int>((static_cast<std::size_t>(i) * 7919) % static_cast<std::size_t>(requests));
        profile.per_request.push_back(replica.run(held_out.input_items(static_cast<std::size_t>(r)), k, checksum));
      }
      kept.reset();
    }

    // 3. Batch throughput, Serial against OpenMP (alternated).
    if (throughput_on) {
      embsr::BatchBuilder builder;
      embsr::HostBatch host;
      const auto range = [&] {
        std::vector<embsr::index_t> v(static_cast<std::size_t>(batch_size));
        for (int i = 0; i < batch_size; ++i) v[static_cast<std::size_t>(i)] = i;
        return v;
      }();
      builder.build(held_out, embsr::Span<const embsr::index_t>(range.data(), range.size()), host);
      embsr::Batch<HostMem> serial_batch;
      serial_batch.copy_from(host);
#if defined(KOKKOS_ENABLE_OPENMP)
      using Omp = Kokkos::OpenMP;
      embsr::Batch<Omp::memory_space> omp_batch;
      omp_batch.copy_from(host);
#endif
      for (std::size_t m = 0; m < models.size(); ++m) {
        embsr::SessionModel<Serial>::ids_view sids;
        embsr::SessionModel<Serial>::values_view svalues;
        run_top_k(*serial[m], serial_batch, k, sids, svalues, checksum);  // warm-up (allocation)
#if defined(KOKKOS_ENABLE_OPENMP)
        auto omp = embsr::make_model<Omp>(models[m], options);
        t0 = Clock::now();
        omp->fit(train);
        runs[m].openmp_fit_s = seconds_since(t0);
        omp->freeze();
        embsr::SessionModel<Omp>::ids_view oids;
        embsr::SessionModel<Omp>::values_view ovalues;
        run_top_k(*omp, omp_batch, k, oids, ovalues, checksum);
#endif
        std::vector<double> ts, to;
        for (int rep = 0; rep < batch_reps; ++rep) {
          t0 = Clock::now();
          run_top_k(*serial[m], serial_batch, k, sids, svalues, checksum);
          ts.push_back(seconds_since(t0));
#if defined(KOKKOS_ENABLE_OPENMP)
          t0 = Clock::now();
          run_top_k(*omp, omp_batch, k, oids, ovalues, checksum);
          to.push_back(seconds_since(t0));
#endif
        }
        runs[m].serial_batch_s = percentile(ts, 0.5);
        runs[m].openmp_batch_s = percentile(to, 0.5);
      }
    }

    // The tables.
    std::printf("\n| %d sessions | fit (s) | derived tables MiB | RSS growth MiB | workspace/thread MiB |", S);
    if (latency_on) std::printf(" p50 ms | p90 ms | p99 ms | mean ms | max ms | CPU p99 ms | CPU max ms |");
    if (throughput_on) std::printf(" batch %d Serial s/s | OpenMP(%d) s/s | speed-up |", batch_size, omp_threads);
    std::printf("\n|---|---:|---:|---:|---:|");
    if (latency_on) std::printf("---:|---:|---:|---:|---:|---:|---:|");
    if (throughput_on) std::printf("---:|---:|---:|");
    std::printf("\n");
    auto latency_cells = [](const std::vector<double>& v, const std::vector<double>& c) {
      std::printf(" %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |", 1e3 * percentile(v, 0.5), 1e3 * percentile(v, 0.9),
                  1e3 * percentile(v, 0.99), 1e3 * mean_of(v), 1e3 * percentile(v, 1.0), 1e3 * percentile(c, 0.99),
                  1e3 * percentile(c, 1.0));
    };
    for (const auto& run : runs) {
      std::printf("| %s | %.3f | %.1f | %.1f | %.2f |", run.name.c_str(), run.fit_s, run.derived / 1048576.0, run.rss_growth_mib,
                  run.workspace / 1048576.0);
      if (latency_on) latency_cells(run.latency, run.cpu);
      if (throughput_on)
        std::printf(" %.0f | %.0f | %.2fx |", batch_size / run.serial_batch_s, run.openmp_batch_s > 0 ? batch_size / run.openmp_batch_s : 0.0,
                    run.openmp_batch_s > 0 ? run.serial_batch_s / run.openmp_batch_s : 0.0);
      std::printf("\n");
    }
    if (e2e_on) {
      std::printf("| %s e2e (ExampleSet + BatchBuilder + copy_from + top_k) | | | | |", e2e_model.c_str());
      latency_cells(e2e, e2e_cpu);
      if (throughput_on) std::printf(" | | |");
      std::printf("\n");
    }
    std::printf("\n");
    bool all_ok = true;
    for (const auto& run : runs)
      if (latency_on && percentile(run.latency, 0.99) > 1e-3) {
        all_ok = false;
        std::printf("p99 over 1 ms: %s (%.3f ms wall, %.3f ms CPU)\n", run.name.c_str(), 1e3 * percentile(run.latency, 0.99),
                    1e3 * percentile(run.cpu, 0.99));
      }
    if (latency_on && all_ok) std::printf("every model's p99 <= 1 ms at %d sessions\n", S);
    if (latency_on) {
      // What makes a request slow: its distinct items, and the item-list entries the candidate
      // search reads (sum over them of min(df(v), sample_size)); and how often the thread was
      // not running for part of a call (wall - CPU > 0.1 ms: preempted by other processes).
      auto shape = [&](int r, double& distinct, double& scanned) {
        const auto items = held_out.input_items(static_cast<std::size_t>(r));
        std::vector<embsr::index_t> seen(items.begin(), items.end());
        std::sort(seen.begin(), seen.end());
        seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
        distinct = static_cast<double>(seen.size());
        scanned = 0;
        for (const embsr::index_t v : seen) scanned += static_cast<double>(std::min<std::int64_t>(document_frequency[static_cast<std::size_t>(v)], 500));
      };
      for (std::size_t m = 0; m < runs.size(); ++m) {
        const auto& run = runs[m];
        const double cut = percentile(run.cpu, 0.99);
        double d_all = 0, s_all = 0, d_slow = 0, s_slow = 0, n_slow = 0, preempted = 0;
        for (std::size_t i = 0; i < run.cpu.size(); ++i) {
          double d = 0, sc = 0;
          shape(run.request[i], d, sc);
          d_all += d, s_all += sc;
          if (run.cpu[i] >= cut) d_slow += d, s_slow += sc, n_slow += 1;
          if (run.latency[i] - run.cpu[i] > 1e-4) preempted += 1;
        }
        const auto n = static_cast<double>(std::max<std::size_t>(1, run.cpu.size()));
        std::printf("%-10s slowest 1%% by CPU (>= %.3f ms): %.1f distinct items, %.0f list entries read (all requests: %.1f, %.0f); "
                    "%.1f%% of calls preempted > 0.1 ms\n",
                    run.name.c_str(), 1e3 * cut, d_slow / std::max(1.0, n_slow), s_slow / std::max(1.0, n_slow), d_all / n, s_all / n,
                    100 * preempted / n);
      }
    }
    if (!profile.per_request.empty()) {
      // Mean of each phase over all requests, and over the 1% slowest (by the replica's total).
      const std::size_t P = PhaseProfile::kPhases, n = profile.per_request.size();
      std::vector<double> total(n);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t p = 0; p < P; ++p) total[i] += profile.per_request[i][p];
      const double cut = percentile(total, 0.99);
      std::array<double, PhaseProfile::kPhases> all{}, slow{};
      double n_slow = 0;
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t p = 0; p < P; ++p) all[p] += profile.per_request[i][p] / static_cast<double>(n);
        if (total[i] >= cut) {
          n_slow += 1;
          for (std::size_t p = 0; p < P; ++p) slow[p] += profile.per_request[i][p];
        }
      }
      std::printf("time split (replica of the scorer with SKNN's formulas, same requests): mean %.3f ms, p99 %.3f ms\n",
                  1e3 * mean_of(total), 1e3 * cut);
      std::printf("| phase | mean us | share | mean us in the slowest 1%% | share |\n|---|---:|---:|---:|---:|\n");
      double sum_all = 0, sum_slow = 0;
      for (std::size_t p = 0; p < P; ++p) sum_all += all[p], sum_slow += slow[p] / std::max(1.0, n_slow);
      for (std::size_t p = 0; p < P; ++p)
        std::printf("| %s | %.1f | %.0f%% | %.1f | %.0f%% |\n", PhaseProfile::name(static_cast<int>(p)), 1e6 * all[p],
                    100 * all[p] / sum_all, 1e6 * slow[p] / std::max(1.0, n_slow), 100 * slow[p] / std::max(1.0, n_slow) / sum_slow);
    }
    std::printf("\n");

    json << (si ? ", " : "") << "{\"sessions\": " << S << ", \"entries\": " << mem.entries << ", \"events\": " << mem.events
         << ", \"index_build_s\": " << index_s << ", \"index_bytes\": " << mem.bytes << ", \"index_allocated_bytes\": " << mem.capacity_bytes
         << ", \"bytes_per_event\": " << static_cast<double>(mem.bytes) / static_cast<double>(mem.events)
         << ", \"bytes_per_entry\": " << static_cast<double>(mem.bytes) / static_cast<double>(mem.entries)
         << ", \"mean_input_micro\": " << train_shape.micro << ", \"mean_input_macro\": " << train_shape.macro
         << ", \"mean_input_distinct\": " << train_shape.distinct << ", \"models\": [";
    for (std::size_t m = 0; m < runs.size(); ++m) {
      const auto& run = runs[m];
      json << (m ? ", " : "") << "{\"model\": \"" << run.name << "\", \"fit_s\": " << run.fit_s << ", \"derived_bytes\": " << run.derived
           << ", \"rss_growth_mib\": " << run.rss_growth_mib << ", \"workspace_bytes\": " << run.workspace;
      if (latency_on)
        json << ", \"p50_ms\": " << 1e3 * percentile(run.latency, 0.5) << ", \"p90_ms\": " << 1e3 * percentile(run.latency, 0.9)
             << ", \"p99_ms\": " << 1e3 * percentile(run.latency, 0.99) << ", \"mean_ms\": " << 1e3 * mean_of(run.latency)
             << ", \"max_ms\": " << 1e3 * percentile(run.latency, 1.0) << ", \"cpu_p50_ms\": " << 1e3 * percentile(run.cpu, 0.5)
             << ", \"cpu_p99_ms\": " << 1e3 * percentile(run.cpu, 0.99) << ", \"cpu_max_ms\": " << 1e3 * percentile(run.cpu, 1.0)
             << ", \"preempted_pct\": " << preempted_pct(run.latency, run.cpu);
      if (throughput_on)
        json << ", \"batch\": " << batch_size << ", \"serial_sessions_per_s\": " << batch_size / run.serial_batch_s
             << ", \"openmp_sessions_per_s\": " << (run.openmp_batch_s > 0 ? batch_size / run.openmp_batch_s : 0.0)
             << ", \"openmp_fit_s\": " << run.openmp_fit_s;
      json << "}";
    }
    json << "]";
    if (e2e_on)
      json << ", \"e2e\": {\"model\": \"" << e2e_model << "\", \"p50_ms\": " << 1e3 * percentile(e2e, 0.5)
           << ", \"p90_ms\": " << 1e3 * percentile(e2e, 0.9) << ", \"p99_ms\": " << 1e3 * percentile(e2e, 0.99)
           << ", \"mean_ms\": " << 1e3 * mean_of(e2e) << ", \"max_ms\": " << 1e3 * percentile(e2e, 1.0)
           << ", \"cpu_p99_ms\": " << 1e3 * percentile(e2e_cpu, 0.99) << "}";
    json << "}";
  }
  json << "], \"peak_rss_mib\": " << peak_rss_mib() << "}";
  std::printf("peak resident memory %.0f MiB (checksum %zu)\n", peak_rss_mib(), checksum);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << json.str() << "\n";
    if (!out) {
      std::fprintf(stderr, "bench_knn: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
}
