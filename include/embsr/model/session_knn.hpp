#pragma once
// Session-based nearest neighbours: SKNN, V-SKNN, STAN, VSTAN and our operation-weighted VSTAN
// (vstan-ops), one scorer behind five registry entries. They learn by indexing the training split
// (model/knn_index.hpp) and score on the host (OpenMP over the sessions of a batch; a CUDA build
// copies the request to the host and the scores back).
//
// The formulas. Sessions are sequences of macro items (consecutive micro-behaviors on one item are
// one step, model/knn_index.hpp). The current session c has macro items y_1..y_L; for each of its
// distinct items v, pos(v) = v's last position and ops_c(v) the operations of its micro-behaviors.
// A training session n has distinct items items(n), last positions last_n(v), operations ops_n(v),
// order key t_n. Sums over a session's items run in their order of first appearance.
//
//  Operation weight of an item in a session (vstan-ops only; every other model has a = 1):
//    a_n(v) = max_{o in ops_n(v)} w_o,  w_o = (r_o / r)^op_power,
//    r_o = (hits_o + 1) / (uses_o + 2),  r = (sum_o hits_o + 1) / (sum_o uses_o + 2):
//    how often an item the session touched with o is its next item, against all operations
//    (model/knn_index.hpp counts hits and uses on the training split). op_power = 0 is VSTAN.
//  Weight of a current item:  u(v) = pw(pos(v), L) * a_c(v), with the position weighting pw:
//    same 1 | div p/L | linear max(0, 1 - 0.1 (L - p)) | log 1 / log10(L - p + 1.7)
//    | quadratic (p/L)^2 | exp exp((p - L) / lambda_spw)
//    (V-SKNN's decays, Ludewig and Jannach, UMUAI 2018, Section 3.2, session-rec vsknn.py; exp is
//    STAN's lambda_1, Garg et al., SIGIR 2019, Eq. 3. session-rec's linear weightings drop to 0
//    after position 10 / turn negative: we clamp at 0 instead.)
//  Similarity over the shared items I = items(c) n items(n):
//    cosine  sim = sum_{v in I} u(v) a_n(v) / (sqrt(sum_{v in c} u(v)^2) * sqrt(sum_{v in n} a_n(v)^2))
//            (SKNN with u = a = 1: |I| / sqrt(|c| |n|), Jannach and Ludewig, RecSys 2017;
//            STAN Eq. 4; VSTAN, Ludewig et al., UMUAI 2021, Section 4.1)
//    vector  sim = sum_{v in I} u(v) a_n(v) / |items(c)|            (V-SKNN, session-rec vsknn.py)
//    then, when lambda_snh > 0 (STAN's lambda_2, Eq. 5):
//            sim *= exp(-(t_max - t_n) / (lambda_snh * (t_max - t_min)))
//    with t_min, t_max the oldest and newest indexed order keys. STAN decays by the age at the
//    request's time t: exp(-(t - t_n)/l) = exp(-(t - t_max)/l) exp(-(t_max - t_n)/l), the first
//    factor the same for every neighbour, so ranks are those of STAN at any request time; lambda_snh
//    is a fraction of the training split's time span, so that one range suits logs whose order keys
//    are seconds (trivago, CSV) or load order (JD).
//  Candidates and neighbours: the sessions sharing an item with c; when there are more than
//    sample_size (> 0), the sample_size most recent (sampling = recent) or those with the smallest
//    h(n) = mix64(stream_key(seed, 0) + 0x9e3779b97f4a7c15 (n + 1)) (sampling = random, core/random.hpp:
//    a seeded uniform sample that depends on nothing but the seed). The k candidates of largest
//    sim > 0 are the neighbours K(c), ties to the more recent session.
//  Item score, summed over the neighbours in that order (sim descending, recent first):
//    s(v) = sum_{n in K(c), v in items(n)} sim(c, n) * m(q_n) * a_n(v) * e_n(v) * idf(v)
//    and s(v) = 0 for v in items(c) when remind = false, where
//    q_n   = L - max_{v in I} pos(v) + 1: how far back in c the latest item n shares is;
//    m(q)  = same 1 | div 1/q | linear max(0, 1 - 0.1 q) | log 1 / log10(q + 1.7) | quadratic 1/q^2
//            | exp exp(-(q - 1) / lambda_ipw)   (V-SKNN's score decays; exp is VSTAN's lambda_ipw);
//    e_n(v) = exp(-|last_n(v) - p*_n| / lambda_inh), p*_n = max_{v in I} last_n(v), when
//            lambda_inh > 0 (STAN's lambda_3, Eq. 6: the candidate's distance from the last shared
//            item in the neighbour), else 1;
//    idf(v) = 1 + lambda_idf * ln(S / df(v)) (VSTAN, session-rec vstan.py; df counts the training
//            sessions holding v where session-rec counts its events: an item's several
//            micro-behaviors in one session would count it several times).
//  Products are evaluated left to right as written; tests/oracle/knn_reference.py implements these
//  formulas by brute force over all training sessions.
//
// The models (registry names; options beyond k, sample_size, sampling, seed):
//   sknn       cosine, u = 1, m = 1
//   v-sknn     vector, session_weighting, match_weighting, lambda_idf, remind
//   stan       cosine, pw = exp (lambda_spw), lambda_snh, lambda_inh, remind
//   vstan      stan + m = exp (lambda_ipw), lambda_idf
//   vstan-ops  vstan + op_power

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>
#include <Kokkos_UniqueToken.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_validator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/model/knn_index.hpp>
#include <embsr/model/model_options.hpp>

namespace embsr {

enum class KnnKind { Sknn, VSknn, Stan, Vstan, VstanOps };
enum class KnnSimilarity { Cosine, Vector };
enum class KnnDecay { Same, Div, Linear, Log, Quadratic, Exp };
enum class KnnSampling { Recent, Random };

inline const std::vector<std::string>& knn_decay_names() {
  static const std::vector<std::string> names{"same", "div", "linear", "log", "quadratic", "exp"};
  return names;
}
inline std::string to_string(KnnDecay d) { return knn_decay_names()[static_cast<std::size_t>(d)]; }
inline KnnDecay knn_decay_from(const std::string& s) {
  const auto& names = knn_decay_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<KnnDecay>(i);
  throw InvalidArgument("unknown decay '" + s + "'");
}

struct KnnConfig {
  int num_items = 0, num_ops = 0, max_length = 50;
  int k = 100;             // neighbours
  int sample_size = 500;   // candidates kept (0: every session sharing an item)
  KnnSampling sampling = KnnSampling::Recent;
  std::uint64_t seed = 0;  // sampling = random
  KnnSimilarity similarity = KnnSimilarity::Cosine;
  KnnDecay session_weighting = KnnDecay::Same;
  double lambda_spw = 1.02;
  double lambda_snh = 0.0;  // fraction of the training time span; 0: no recency decay
  double lambda_inh = 0.0;  // 0: no position-in-neighbour decay
  KnnDecay match_weighting = KnnDecay::Same;
  double lambda_ipw = 1.02;
  double lambda_idf = 0.0;  // 0: no IDF
  bool remind = true;       // score the current session's own items
  bool use_operations = false;
  double op_power = 0.0;

  void validate() const {
    auto fail = [](const std::string& what) -> void { throw InvalidArgument("KnnConfig: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1 || num_ops > kKnnMaxOperations)
      fail("num_ops must be in [1, " + std::to_string(kKnnMaxOperations) + "], got " + std::to_string(num_ops));
    if (max_length < 1 || max_length >= (1 << 20)) fail("max_length must be in [1, 2^20), got " + std::to_string(max_length));
    if (k < 1) fail("k (neighbours) must be >= 1, got " + std::to_string(k));
    if (sample_size < 0) fail("sample_size must be >= 0 (0: all candidates), got " + std::to_string(sample_size));
    auto positive = [&](double x, const char* name) {
      if (!(std::isfinite(x) && x > 0)) fail(std::string(name) + " must be a positive number, got " + format_option_double(x));
    };
    auto non_negative = [&](double x, const char* name) {
      if (!(std::isfinite(x) && x >= 0)) fail(std::string(name) + " must be >= 0, got " + format_option_double(x));
    };
    if (session_weighting == KnnDecay::Exp) positive(lambda_spw, "lambda_spw");
    if (match_weighting == KnnDecay::Exp) positive(lambda_ipw, "lambda_ipw");
    non_negative(lambda_snh, "lambda_snh");
    non_negative(lambda_inh, "lambda_inh");
    non_negative(lambda_idf, "lambda_idf");
    if (!std::isfinite(op_power) || std::fabs(op_power) > 16) fail("op_power must be in [-16, 16], got " + format_option_double(op_power));
  }
};

namespace detail {

// pw(p, L): the weight of the current session's position p of L.
inline double knn_position_weight(KnnDecay d, int p, int L, double lambda) {
  switch (d) {
    case KnnDecay::Same: return 1.0;
    case KnnDecay::Div: return static_cast<double>(p) / L;
    case KnnDecay::Linear: return std::max(0.0, 1.0 - 0.1 * (L - p));
    case KnnDecay::Log: return 1.0 / std::log10(static_cast<double>(L - p) + 1.7);
    case KnnDecay::Quadratic: return (static_cast<double>(p) / L) * (static_cast<double>(p) / L);
    case KnnDecay::Exp: return std::exp(static_cast<double>(p - L) / lambda);
  }
  return 1.0;
}

// m(q): the weight of a neighbour whose latest shared item is q steps back (q >= 1).
inline double knn_match_weight(KnnDecay d, int q, double lambda) {
  switch (d) {
    case KnnDecay::Same: return 1.0;
    case KnnDecay::Div: return 1.0 / q;
    case KnnDecay::Linear: return std::max(0.0, 1.0 - 0.1 * q);
    case KnnDecay::Log: return 1.0 / std::log10(static_cast<double>(q) + 1.7);
    case KnnDecay::Quadratic: return 1.0 / (static_cast<double>(q) * q);
    case KnnDecay::Exp: return std::exp(-static_cast<double>(q - 1) / lambda);
  }
  return 1.0;
}

struct KnnNeighbour {
  double sim;
  std::int32_t session;
  std::int32_t p_star;  // max last_n(v) over the shared items
  std::int32_t q;       // L - max pos(v) over the shared items + 1
};

// Per-thread scratch, sized once (no allocation per request after the first few).
struct KnnWorkspace {
  std::vector<std::uint32_t> session_mark;  // [S] == stamp: already a candidate
  std::vector<std::uint32_t> item_mark;     // [V] == stamp: in the current session
  std::vector<std::int32_t> item_pos;       // [V] pos(v)
  std::vector<std::uint64_t> item_ops;      // [V] ops_c(v)
  std::vector<double> item_weight;          // [V] u(v)
  std::vector<double> accumulator;          // [V] s(v) of the sparse top-k
  std::vector<std::uint32_t> touched_mark;  // [V] == stamp: accumulator holds s(v)
  std::vector<std::int32_t> touched;
  std::vector<std::int32_t> current_items;
  std::vector<std::int32_t> candidates;
  std::vector<KnnNeighbour> neighbours;
  std::vector<std::pair<double, std::int32_t>> ranked;
  std::uint32_t stamp = 0;

  // Sized for an index of `sessions` sessions over `items` items. A new size (a refit, a loaded
  // index) clears every mark: the stamp restarts, so no mark of an earlier request may survive.
  void ensure(std::size_t sessions, std::size_t items) {
    if (session_mark.size() == sessions && item_mark.size() == items) return;
    session_mark.assign(sessions, 0);
    item_mark.assign(items, 0), touched_mark.assign(items, 0);
    item_pos.assign(items, 0), item_ops.assign(items, 0), item_weight.assign(items, 0.0);
    accumulator.assign(items, 0.0);
    stamp = 0;
  }
  std::uint32_t next_stamp() {
    if (++stamp == 0) {  // wrapped: clear every mark once
      std::fill(session_mark.begin(), session_mark.end(), 0u);
      std::fill(item_mark.begin(), item_mark.end(), 0u);
      std::fill(touched_mark.begin(), touched_mark.end(), 0u);
      stamp = 1;
    }
    return stamp;
  }
};

}  // namespace detail

// The index plus everything the options derive from it, and the scorer of one session.
class KnnScorer {
 public:
  KnnScorer() = default;
  KnnScorer(const KnnConfig& config, KnnIndex index) : config_(config), index_(std::move(index)) { derive(); }

  const KnnIndex& index() const { return index_; }
  bool empty() const { return index_.num_sessions() == 0; }
  const std::vector<double>& operation_weights() const { return op_weight_; }

  // Scores the session of micro-behaviors (items[i], ops[i]), i < t, calling add(v, contribution)
  // for every nonzero term of s(v) in the order of the formulas (see the top of this file).
  template <class Add>
  void score(const index_t* items, const index_t* ops, std::size_t t, detail::KnnWorkspace& ws, Add&& add) const {
    ws.ensure(index_.num_sessions(), static_cast<std::size_t>(config_.num_items));
    const std::uint32_t stamp = ws.next_stamp();
    // The current session: distinct items, last positions, operations.
    ws.current_items.clear();
    int L = 0;
    index_t previous = -1;
    for (std::size_t i = 0; i < t; ++i) {
      const index_t v = items[i];
      if (v != previous) ++L;
      previous = v;
      if (ws.item_mark[v] != stamp) {
        ws.item_mark[v] = stamp;
        ws.item_ops[v] = 0;
        ws.current_items.push_back(v);
      }
      ws.item_pos[v] = L;
      ws.item_ops[v] |= std::uint64_t(1) << ops[i];
    }
    if (L == 0) return;
    double norm_c = 0.0;
    for (const std::int32_t v : ws.current_items) {
      double u = detail::knn_position_weight(config_.session_weighting, ws.item_pos[v], L, config_.lambda_spw);
      if (config_.use_operations) u *= operation_weight(ws.item_ops[v]);
      ws.item_weight[v] = u;
      norm_c += u * u;
    }
    norm_c = std::sqrt(norm_c);
    const double size_c = static_cast<double>(ws.current_items.size());

    // Candidates: the sessions sharing an item (only the first sample_size of each most-recent-first
    // list can be among the sample_size most recent of their union).
    ws.candidates.clear();
    const std::int64_t m = config_.sample_size;
    const bool recent_prefix = m > 0 && config_.sampling == KnnSampling::Recent;
    for (const std::int32_t v : ws.current_items) {
      const std::int64_t begin = index_.item_offsets[v], end = index_.item_offsets[v + 1];
      const std::int64_t stop = recent_prefix ? std::min(end, begin + m) : end;
      for (std::int64_t x = begin; x < stop; ++x) {
        const std::int32_t n = index_.item_sessions[static_cast<std::size_t>(x)];
        if (ws.session_mark[n] != stamp) {
          ws.session_mark[n] = stamp;
          ws.candidates.push_back(n);
        }
      }
    }
    if (m > 0 && static_cast<std::int64_t>(ws.candidates.size()) > m) {
      auto middle = ws.candidates.begin() + m;
      if (config_.sampling == KnnSampling::Recent) {
        std::nth_element(ws.candidates.begin(), middle, ws.candidates.end(), std::greater<std::int32_t>());
      } else {
        const CounterRng random = sampling_random_;
        std::nth_element(ws.candidates.begin(), middle, ws.candidates.end(), [&](std::int32_t a, std::int32_t b) {
          return random(static_cast<std::uint64_t>(a)) < random(static_cast<std::uint64_t>(b));
        });
      }
      ws.candidates.resize(static_cast<std::size_t>(m));
    }

    // Similarities.
    ws.neighbours.clear();
    for (const std::int32_t n : ws.candidates) {
      double dot = 0.0;
      std::int32_t p_star = 0, latest = 0;
      for (auto x = static_cast<std::size_t>(index_.session_offsets[n]); x < static_cast<std::size_t>(index_.session_offsets[n + 1]); ++x) {
        const std::int32_t v = index_.entry_item[x];
        if (ws.item_mark[v] != stamp) continue;
        dot += ws.item_weight[v] * entry_weight(x);
        p_star = std::max(p_star, index_.entry_last_pos[x]);
        latest = std::max(latest, ws.item_pos[v]);
      }
      double sim = 0.0;
      if (config_.similarity == KnnSimilarity::Cosine) {
        if (norm_c > 0.0) sim = dot / (norm_c * session_norm_[n]);
      } else {
        sim = dot / size_c;
      }
      if (recency_) sim *= session_decay_[n];
      if (sim > 0.0) ws.neighbours.push_back(detail::KnnNeighbour{sim, n, p_star, L - latest + 1});
    }
    auto better = [](const detail::KnnNeighbour& a, const detail::KnnNeighbour& b) {
      return a.sim > b.sim || (a.sim == b.sim && a.session > b.session);
    };
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(config_.k), ws.neighbours.size());
    // `better` is a total order (sessions are distinct), so selecting then sorting the k is exact.
    const auto kth = ws.neighbours.begin() + static_cast<std::ptrdiff_t>(k);
    std::nth_element(ws.neighbours.begin(), kth, ws.neighbours.end(), better);
    std::sort(ws.neighbours.begin(), kth, better);

    // Item scores.
    for (std::size_t j = 0; j < k; ++j) {
      const detail::KnnNeighbour& nb = ws.neighbours[j];
      const double base = nb.sim * detail::knn_match_weight(config_.match_weighting, nb.q, config_.lambda_ipw);
      if (!(base > 0.0)) continue;
      for (auto x = static_cast<std::size_t>(index_.session_offsets[nb.session]); x < static_cast<std::size_t>(index_.session_offsets[nb.session + 1]); ++x) {
        const std::int32_t v = index_.entry_item[x];
        if (!config_.remind && ws.item_mark[v] == stamp) continue;
        double c = base * entry_weight(x);
        if (config_.lambda_inh > 0.0) c *= neighbour_position_weight(std::abs(index_.entry_last_pos[x] - nb.p_star));
        if (config_.lambda_idf > 0.0) c *= idf_[static_cast<std::size_t>(v)];
        add(v, c);
      }
    }
  }

 private:
  // e = exp(-d / lambda_inh), tabulated for the distances of ordinary sessions.
  double neighbour_position_weight(std::int32_t d) const {
    return static_cast<std::size_t>(d) < inh_table_.size() ? inh_table_[static_cast<std::size_t>(d)]
                                                           : std::exp(-static_cast<double>(d) / config_.lambda_inh);
  }
  double entry_weight(std::size_t x) const { return config_.use_operations ? entry_weight_[x] : 1.0; }
  double operation_weight(std::uint64_t mask) const {
    double a = 0.0;
    for (int o = 0; o < config_.num_ops; ++o)
      if (mask >> o & 1) a = std::max(a, op_weight_[static_cast<std::size_t>(o)]);
    return a;
  }

  void derive() {
    const KnnIndex& ix = index_;
    const std::size_t S = ix.num_sessions(), V = static_cast<std::size_t>(config_.num_items);
    // Operation weights.
    op_weight_.assign(static_cast<std::size_t>(config_.num_ops), 1.0);
    if (config_.use_operations) {
      std::int64_t hits = 0, uses = 0;
      for (std::size_t o = 0; o < op_weight_.size(); ++o) hits += ix.op_hits[o], uses += ix.op_uses[o];
      const double r = (static_cast<double>(hits) + 1.0) / (static_cast<double>(uses) + 2.0);
      for (std::size_t o = 0; o < op_weight_.size(); ++o) {
        const double r_o = (static_cast<double>(ix.op_hits[o]) + 1.0) / (static_cast<double>(ix.op_uses[o]) + 2.0);
        op_weight_[o] = std::pow(r_o / r, config_.op_power);
      }
      entry_weight_.resize(ix.num_entries());
      for (std::size_t x = 0; x < ix.num_entries(); ++x) entry_weight_[x] = operation_weight(ix.entry_op_mask[x]);
    }
    // sqrt(sum_{v in n} a_n(v)^2), in the order of n's entries.
    session_norm_.resize(S);
    for (std::size_t n = 0; n < S; ++n) {
      double sum = 0.0;
      for (auto x = static_cast<std::size_t>(ix.session_offsets[n]); x < static_cast<std::size_t>(ix.session_offsets[n + 1]); ++x)
        sum += entry_weight(x) * entry_weight(x);
      session_norm_[n] = std::sqrt(sum);
    }
    // Recency decay.
    const double t_min = ix.session_time.front(), t_max = ix.session_time.back();
    recency_ = config_.lambda_snh > 0.0 && t_max > t_min;
    session_decay_.assign(recency_ ? S : 0, 1.0);
    if (recency_)
      for (std::size_t n = 0; n < S; ++n)
        session_decay_[n] = std::exp(-(t_max - ix.session_time[n]) / (config_.lambda_snh * (t_max - t_min)));
    // exp(-d / lambda_inh) for the distances d a session can have, up to a bound: a loaded index
    // may claim sessions of 2^31 items, which must not size a table.
    std::int32_t longest = 1;
    for (const std::int32_t length : ix.session_length) longest = std::max(longest, length);
    inh_table_.assign(config_.lambda_inh > 0.0 ? static_cast<std::size_t>(std::min(longest, 4096)) : 0, 1.0);
    for (std::size_t d = 0; d < inh_table_.size(); ++d)
      inh_table_[d] = std::exp(-static_cast<double>(d) / config_.lambda_inh);
    idf_.assign(config_.lambda_idf > 0.0 ? V : 0, 1.0);
    for (std::size_t v = 0; v < idf_.size(); ++v) {
      const std::int64_t df = ix.document_frequency(static_cast<int>(v));
      if (df > 0) idf_[v] = 1.0 + config_.lambda_idf * std::log(static_cast<double>(S) / static_cast<double>(df));
    }
    sampling_random_ = CounterRng(config_.seed, 0);
  }

  KnnConfig config_;
  KnnIndex index_;
  std::vector<double> op_weight_, entry_weight_, session_norm_, session_decay_, inh_table_, idf_;
  bool recency_ = false;
  CounterRng sampling_random_{0, 0};
};

// A neighbourhood model on ExecSpace (scores and top-k land in its memory space; the work runs on
// the host: ExecSpace itself when it runs on the host, else the default host space).
template <class ExecSpace, KnnKind Kind>
class SessionKnnModel {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "SessionKnnModel: ExecSpace must be a Kokkos execution space");

 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using scalar_type = double;
  using config_type = KnnConfig;
  using batch_type = Batch<memory_space>;
  static constexpr bool learns_by_gradients = false;
  static constexpr bool runs_on_host = Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible;
  using host_execution_space = std::conditional_t<runs_on_host, ExecSpace, Kokkos::DefaultHostExecutionSpace>;

  explicit SessionKnnModel(const KnnConfig& config, ExecSpace exec = ExecSpace()) : config_(config), exec_(exec) {
    config_.validate();
  }

  const KnnConfig& config() const { return config_; }
  const ExecSpace& execution_space_instance() const { return exec_; }
  void freeze() {}
  bool fitted() const { return !scorer_.empty(); }
  const KnnScorer& scorer() const { return scorer_; }

  // Indexes the training split (replacing an earlier index).
  void fit(const ExampleSet& train) { scorer_ = KnnScorer(config_, build_knn_index(train, config_.num_items, config_.num_ops)); }
  std::vector<std::vector<std::int64_t>> tables() const {
    require_fitted("tables");
    return knn_index_tables(scorer_.index());
  }
  void load_tables(const std::vector<std::vector<std::int64_t>>& tables) {
    scorer_ = KnnScorer(config_, knn_index_from_tables(tables, config_.num_items, config_.num_ops));
  }

  void validate(const batch_type& batch) const {
    // The next operation is not used.
    validate_batch(exec_, batch, BatchLimits::for_model(config_.num_items, config_.num_ops, config_.max_length, false),
                   "session kNN");
  }

  // [B x num_items] in memory_space.
  MatRef<double, memory_space> scores(const batch_type& batch) {
    require_fitted("scores");
    validate(batch);
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions), V = static_cast<std::size_t>(config_.num_items);
    auto out = ensure(scores_, B, V, "embsr::knn::scores");
    const auto host = host_scores(out);
    const HostRequest request = to_host(batch);
    for_each_session(B, [&](std::size_t b, detail::KnnWorkspace& ws) {
      double* row = &host(b, 0);
      std::fill(row, row + V, 0.0);
      scorer_.score(request.items + request.offsets[b], request.ops + request.offsets[b],
                    static_cast<std::size_t>(request.offsets[b + 1] - request.offsets[b]), ws,
                    [row](std::int32_t v, double c) { row[v] += c; });
    });
    if constexpr (!runs_on_host) Kokkos::deep_copy(exec_, out, host);
    return out;
  }

  // The k best items of every session, best first: (value descending, id ascending), the order of
  // embsr::top_k over scores(), computed sparsely from the scored items only.
  void top_k(const batch_type& batch, int k, Kokkos::View<int**, Kokkos::LayoutRight, memory_space>& ids,
             Kokkos::View<double**, Kokkos::LayoutRight, memory_space>& values) {
    if (k < 1) throw InvalidArgument("session kNN top_k: k must be >= 1, got " + std::to_string(k));
    require_fitted("top_k");
    validate(batch);
    const int kk = std::min(k, config_.num_items);
    const auto B = static_cast<std::size_t>(batch.sizes.num_sessions);
    if (ids.extent(0) != B || ids.extent(1) != static_cast<std::size_t>(kk))
      ids = Kokkos::View<int**, Kokkos::LayoutRight, memory_space>("embsr::knn::ids", B, kk);
    if (values.extent(0) != B || values.extent(1) != static_cast<std::size_t>(kk))
      values = Kokkos::View<double**, Kokkos::LayoutRight, memory_space>("embsr::knn::values", B, kk);
    auto host_ids = Kokkos::create_mirror_view(ids);
    auto host_values = Kokkos::create_mirror_view(values);
    const HostRequest request = to_host(batch);
    for_each_session(B, [&](std::size_t b, detail::KnnWorkspace& ws) {
      ws.touched.clear();
      scorer_.score(request.items + request.offsets[b], request.ops + request.offsets[b],
                    static_cast<std::size_t>(request.offsets[b + 1] - request.offsets[b]), ws,
                    [&ws](std::int32_t v, double c) {
                      if (ws.touched_mark[v] != ws.stamp) {  // the stamp of this request
                        ws.touched_mark[v] = ws.stamp;
                        ws.accumulator[v] = 0.0;
                        ws.touched.push_back(v);
                      }
                      ws.accumulator[v] += c;
                    });
      const std::uint32_t current = ws.stamp;
      ws.ranked.clear();
      for (const std::int32_t v : ws.touched)
        if (ws.touched_mark[v] == current && ws.accumulator[v] > 0.0) ws.ranked.emplace_back(ws.accumulator[v], v);
      const auto take = std::min<std::size_t>(static_cast<std::size_t>(kk), ws.ranked.size());
      std::partial_sort(ws.ranked.begin(), ws.ranked.begin() + static_cast<std::ptrdiff_t>(take), ws.ranked.end(),
                        [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
      std::size_t j = 0;
      for (; j < take; ++j) host_ids(b, j) = ws.ranked[j].second, host_values(b, j) = ws.ranked[j].first;
      // Then the items scoring 0, by id.
      for (std::int32_t v = 0; j < static_cast<std::size_t>(kk); ++v)
        if (!(ws.touched_mark[v] == current && ws.accumulator[v] > 0.0)) host_ids(b, j) = v, host_values(b, j) = 0.0, ++j;
    });
    Kokkos::deep_copy(ids, host_ids);
    Kokkos::deep_copy(values, host_values);
  }

 private:
  struct HostRequest {
    const index_t* offsets;
    const index_t* items;
    const index_t* ops;
  };

  void require_fitted(const char* what) const {
    if (!fitted()) throw InvalidArgument(std::string("session kNN ") + what + ": the model has no index yet (fit it or load a checkpoint)");
  }

  // The batch's micro-behaviors readable on the host (copied when the batch lives on a device).
  HostRequest to_host(const batch_type& batch) {
    if constexpr (runs_on_host) {
      return HostRequest{batch.micro_offsets.data(), batch.micro_items.data(), batch.micro_ops.data()};
    } else {
      copy_to_host(batch.micro_offsets, host_offsets_);
      copy_to_host(batch.micro_items, host_items_);
      copy_to_host(batch.micro_ops, host_ops_);
      return HostRequest{host_offsets_.data(), host_items_.data(), host_ops_.data()};
    }
  }
  template <class DeviceView>
  static void copy_to_host(const DeviceView& from, Kokkos::View<index_t*, Kokkos::HostSpace>& to) {
    if (to.extent(0) < from.extent(0)) to = Kokkos::View<index_t*, Kokkos::HostSpace>("embsr::knn::request", from.extent(0));
    Kokkos::deep_copy(Kokkos::subview(to, std::make_pair(std::size_t(0), from.extent(0))), from);
  }
  auto host_scores(const MatRef<double, memory_space>& out) {
    if constexpr (runs_on_host) {
      return out;
    } else {
      if (host_scores_.extent(0) != out.extent(0) || host_scores_.extent(1) != out.extent(1))
        host_scores_ = Mat<double, Kokkos::HostSpace>("embsr::knn::host_scores", out.extent(0), out.extent(1));
      return host_scores_;
    }
  }

  // f(b, workspace) for every session b < B: in parallel over sessions on the host execution
  // space, one workspace per concurrent thread; B = 1 runs on the calling thread.
  template <class F>
  void for_each_session(std::size_t B, const F& f) {
    if (B == 0) return;
    exec_.fence();  // the batch was filled on exec_
    if (B == 1) {
      if (workspaces_.empty()) workspaces_.resize(1);
      f(0, workspaces_[0]);
      return;
    }
    Kokkos::Experimental::UniqueToken<host_execution_space> token;
    if (workspaces_.size() < static_cast<std::size_t>(token.size())) workspaces_.resize(static_cast<std::size_t>(token.size()));
    auto* workspaces = workspaces_.data();
    Kokkos::parallel_for("embsr::knn::score_sessions", Kokkos::RangePolicy<host_execution_space>(0, static_cast<int>(B)),
                         [=](const int b) {
                           const int id = token.acquire();
                           f(static_cast<std::size_t>(b), workspaces[id]);
                           token.release(id);
                         });
    Kokkos::fence();
  }

  KnnConfig config_;
  ExecSpace exec_;
  KnnScorer scorer_;
  std::vector<detail::KnnWorkspace> workspaces_;
  Mat<double, memory_space> scores_;
  Mat<double, Kokkos::HostSpace> host_scores_;
  Kokkos::View<index_t*, Kokkos::HostSpace> host_offsets_, host_items_, host_ops_;
};

// ---------------------------------------------------------------------------------------------
// Registry entries (model/registry.hpp)
// ---------------------------------------------------------------------------------------------

template <KnnKind Kind>
struct KnnSpec {
  template <class ExecSpace>
  using model = SessionKnnModel<ExecSpace, Kind>;
  using config_type = KnnConfig;

  static constexpr bool takes_recency = Kind == KnnKind::Stan || Kind == KnnKind::Vstan || Kind == KnnKind::VstanOps;
  static constexpr bool takes_idf = Kind == KnnKind::VSknn || Kind == KnnKind::Vstan || Kind == KnnKind::VstanOps;
  static constexpr bool takes_ipw = Kind == KnnKind::Vstan || Kind == KnnKind::VstanOps;

  // The settings a model fixes (everything its options do not set).
  static KnnConfig base_config() {
    KnnConfig c;
    switch (Kind) {
      case KnnKind::Sknn: break;
      case KnnKind::VSknn:
        c.similarity = KnnSimilarity::Vector;
        c.session_weighting = KnnDecay::Div;
        c.match_weighting = KnnDecay::Div;
        break;
      case KnnKind::Stan:
      case KnnKind::Vstan:
      case KnnKind::VstanOps:
        c.session_weighting = KnnDecay::Exp;
        c.lambda_snh = 0.1;
        c.lambda_inh = 2.05;
        if (Kind != KnnKind::Stan) {
          c.match_weighting = KnnDecay::Exp;
          c.lambda_idf = 5.0;
        }
        c.use_operations = Kind == KnnKind::VstanOps;
        if (c.use_operations) c.op_power = 1.0;
        break;
    }
    return c;
  }

  static ModelOptions options_of(const KnnConfig& c) {
    ModelOptions o;
    o.set("num_items", c.num_items).set("num_ops", c.num_ops).set("max_length", c.max_length);
    o.set("k", c.k).set("sample_size", c.sample_size).set("sampling", c.sampling == KnnSampling::Recent ? "recent" : "random");
    o.set("seed", static_cast<std::uint64_t>(c.seed));
    if (Kind == KnnKind::VSknn) {
      o.set("session_weighting", to_string(c.session_weighting)).set("match_weighting", to_string(c.match_weighting));
    }
    if (takes_recency) o.set("lambda_spw", c.lambda_spw).set("lambda_snh", c.lambda_snh).set("lambda_inh", c.lambda_inh);
    if (takes_ipw) o.set("lambda_ipw", c.lambda_ipw);
    if (takes_idf) o.set("lambda_idf", c.lambda_idf);
    if (Kind != KnnKind::Sknn) o.set("remind", c.remind);
    if (Kind == KnnKind::VstanOps) o.set("op_power", c.op_power);
    return o;
  }

  static KnnConfig config_of(const ModelOptions& o) {
    KnnConfig c = base_config();
    c.num_items = o.get_int32("num_items", c.num_items);
    c.num_ops = o.get_int32("num_ops", c.num_ops);
    c.max_length = o.get_int32("max_length", c.max_length);
    c.k = o.get_int32("k", c.k);
    c.sample_size = o.get_int32("sample_size", c.sample_size);
    c.sampling = o.get_choice("sampling", "recent", {"recent", "random"}) == "recent" ? KnnSampling::Recent : KnnSampling::Random;
    c.seed = o.get_uint("seed", c.seed);
    if (Kind == KnnKind::VSknn) {
      const std::vector<std::string> decays{"same", "div", "linear", "log", "quadratic"};
      c.session_weighting = knn_decay_from(o.get_choice("session_weighting", to_string(c.session_weighting), decays));
      c.match_weighting = knn_decay_from(o.get_choice("match_weighting", to_string(c.match_weighting), decays));
    }
    if (takes_recency) {
      c.lambda_spw = o.get_double("lambda_spw", c.lambda_spw);
      c.lambda_snh = o.get_double("lambda_snh", c.lambda_snh);
      c.lambda_inh = o.get_double("lambda_inh", c.lambda_inh);
    }
    if (takes_ipw) c.lambda_ipw = o.get_double("lambda_ipw", c.lambda_ipw);
    if (takes_idf) c.lambda_idf = o.get_double("lambda_idf", c.lambda_idf);
    if (Kind != KnnKind::Sknn) c.remind = o.get_bool("remind", c.remind);
    if (Kind == KnnKind::VstanOps) c.op_power = o.get_double("op_power", c.op_power);
    c.validate();
    return c;
  }

  static ModelInfo info() {
    switch (Kind) {
      case KnnKind::Sknn:
        return {"sknn", "nearest neighbours", "SKNN: cosine over the sessions' item sets, k neighbours among the most recent sharing an item",
                "Jannach and Ludewig, When recurrent neural networks meet the neighborhood for session-based recommendation, "
                "RecSys 2017 (a baseline of the EMBSR paper, Table III)", false, ""};
      case KnnKind::VSknn:
        return {"v-sknn", "nearest neighbours", "V-SKNN: SKNN with the session's items weighted by position, optional IDF",
                "Ludewig and Jannach, Evaluation of session-based recommendation algorithms, UMUAI 2018, Section 3.2", false, ""};
      case KnnKind::Stan:
        return {"stan", "nearest neighbours", "STAN: position, recency and neighbour-position decays",
                "Garg, Gupta, Chhabra, Panwar, Ganguly, Dhawan, Sequence and time aware neighborhood for session-based "
                "recommendations: STAN, SIGIR 2019", false, ""};
      case KnnKind::Vstan:
        return {"vstan", "nearest neighbours", "VSTAN: STAN with V-SKNN's sequence-aware scoring and IDF",
                "Ludewig, Latifi, Mauro, Jannach, Empirical analysis of session-based recommendation algorithms, UMUAI 2021, "
                "Section 4.1", false, ""};
      case KnnKind::VstanOps:
        return {"vstan-ops", "nearest neighbours",
                "VSTAN whose items weigh by their micro-behaviors' operations (weights from the data, tuned power)",
                "embsr (this library): VSTAN (UMUAI 2021) with operation weights in the similarity and the item score", false, ""};
    }
    return {};
  }

  static ModelSpec spec() {
    ModelSpec s;
    s.info = info();
    s.options = data_option_specs();
    const KnnConfig d = base_config();
    auto add = [&](OptionSpec o) { s.options.push_back(std::move(o)); };
    add({"k", OptionKind::Integer, std::to_string(d.k), "neighbours", {}, false, true, search_range(20, 500, true)});
    add({"sample_size", OptionKind::Integer, std::to_string(d.sample_size),
         "candidate sessions kept among those sharing an item (0: all)", {}, false, true, search_range(100, 5000, true)});
    add({"sampling", OptionKind::Choice, "recent", "which candidates: the most recent, or a seeded random sample",
         {"recent", "random"}, false, true, {}});
    add({"seed", OptionKind::Integer, "0", "seed of sampling = random", {}, false, true, {}});
    if (Kind == KnnKind::VSknn) {
      const std::vector<std::string> decays{"same", "div", "linear", "log", "quadratic"};
      add({"session_weighting", OptionKind::Choice, to_string(d.session_weighting), "weight of the session's items by position",
           decays, false, true, search_choices()});
      add({"match_weighting", OptionKind::Choice, to_string(d.match_weighting),
           "weight of a neighbour by how far back its latest shared item is", decays, false, true, search_choices()});
    }
    if (takes_recency) {
      add({"lambda_spw", OptionKind::Number, format_option_double(d.lambda_spw), "position decay of the session's items (STAN lambda_1)",
           {}, false, true, search_range(0.25, 10, true)});
      add({"lambda_snh", OptionKind::Number, format_option_double(d.lambda_snh),
           "recency decay of neighbours, a fraction of the training time span (STAN lambda_2; 0: off)", {}, false, true,
           search_range(0.01, 10, true)});
      add({"lambda_inh", OptionKind::Number, format_option_double(d.lambda_inh),
           "decay of a neighbour's items by distance from the shared item (STAN lambda_3; 0: off)", {}, false, true,
           search_range(0.25, 10, true)});
    }
    if (takes_ipw)
      add({"lambda_ipw", OptionKind::Number, format_option_double(d.lambda_ipw),
           "decay of a neighbour by how far back its latest shared item is (VSTAN)", {}, false, true, search_range(0.25, 10, true)});
    if (takes_idf)
      add({"lambda_idf", OptionKind::Number, format_option_double(d.lambda_idf), "IDF weight of the scored items (0: off)", {},
           false, true, search_range(0, 10)});
    if (Kind != KnnKind::Sknn)
      add({"remind", OptionKind::Boolean, "true", "score the session's own items too", {}, false, true, search_choices()});
    if (Kind == KnnKind::VstanOps)
      add({"op_power", OptionKind::Number, format_option_double(d.op_power),
           "operation weights = (next-item rate of the operation / overall rate)^op_power (0: VSTAN)", {}, false, true,
           search_range(-1, 3)});
    s.validate = [](const ModelOptions& o) { (void)config_of(o); };
    s.count = [](const ModelOptions& o) {
      const KnnConfig c = config_of(o);
      StateCount n{0, 0, 6, static_cast<std::uint64_t>(c.num_items) + 1 + 2 * static_cast<std::uint64_t>(c.num_ops)};
      n.table_values_from_state = true;
      return n;
    };
    s.layout = [](const ModelOptions& o) {
      const KnnConfig c = config_of(o);
      StateLayout l;
      l.tables.push_back(ArraySpec{"session_offsets", 0, 1, true});
      l.tables.push_back(ArraySpec{"session_info", 0, 2, true});
      l.tables.push_back(ArraySpec{"session_entries", 0, 3, true});
      l.tables.push_back(ArraySpec{"item_offsets", static_cast<std::uint64_t>(c.num_items) + 1, 1, false});
      l.tables.push_back(ArraySpec{"item_sessions", 0, 1, true});
      l.tables.push_back(ArraySpec{"operation_counts", static_cast<std::uint64_t>(c.num_ops), 2, false});
      return l;
    };
    // Scores and the per-thread workspace over items; the index itself (and the marks over its
    // sessions) is bounded by the checkpoint's bytes, which the checkpoint reader adds.
    s.memory_bytes = [](const ModelOptions& o, std::uint64_t batch, bool) {
      const auto V = static_cast<std::uint64_t>(config_of(o).num_items);
      const std::uint64_t scores = batch != 0 && V > UINT64_MAX / 16 / batch ? UINT64_MAX / 2 : 8 * batch * V;
      return scores + 48 * V;
    };
    return s;
  }
};

template <class ExecSpace, KnnKind Kind>
struct model_spec_of<SessionKnnModel<ExecSpace, Kind>> {
  using type = KnnSpec<Kind>;
};

}  // namespace embsr
