#pragma once
// Inference: top-k next items for sessions given as raw (item id, operation name) events, from a
// checkpoint (io/checkpoint.hpp) that carries the model (any registered model: its name is in the
// file) and its vocabularies.
//
//  - Events whose item id or operation name the model does not know are dropped (the rest keep
//    their order) and reported in Recommendation::unknown_items / unknown_operations (each token
//    once, in order of first appearance).
//  - The session is cut to its last max_length usable events (the model's option; used_events says
//    how many).
//  - The next operation (position 0 of the attention, NextOpMode::Given) is RecommendOptions::
//    next_operation when given, else the operation of the session's last usable event. Models
//    trained in NextOpMode::Learned ignore it.
//  - exclude_session_items drops every known item of the session (including events cut by
//    max_length) from the list.
//
// Thread safety: the model's forward pass writes into caches inside the model, and the batch
// buffers are reused, so a Recommender guards them with a mutex: recommend() / recommend_batch()
// are const and may be called from several threads at once (the calls are serialised around the
// forward pass; mapping the events runs concurrently). Construct the Recommender on the thread
// that initialised Kokkos: Kokkos 3's host backends only initialise memory from that thread, so
// the constructor allocates everything that a later call might otherwise allocate with
// initialisation (it runs one forward pass over a full chunk of kChunk sessions), and the calls
// allocate only uninitialised buffers. Kokkos 3's OpenMP backend launches kernels only from the
// thread that initialised Kokkos: a Recommender<Kokkos::OpenMP> called from another thread throws
// InvalidArgument saying so; serve from several threads with Recommender<Kokkos::Serial> (or a
// device space), or funnel the calls to the initialising thread.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/vocabulary.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/session_model.hpp>
#include <embsr/serve/request_parser.hpp>  // SessionEvent

namespace embsr {

struct RecommendOptions {
  int k = 20;
  bool exclude_session_items = false;
  // Name of the next operation, for models trained in NextOpMode::Given; empty: the session's last
  // operation.
  std::string next_operation;
};

struct Recommendation {
  std::vector<std::string> items;  // best first, at most k (fewer only when the catalogue is smaller)
  std::vector<float> scores;       // the model's scores of `items` (w_k-scaled cosine logits)
  std::vector<std::string> unknown_items, unknown_operations;
  std::size_t used_events = 0;  // events fed to the model (known, after the max_length cut)
};

template <class ExecSpace = Kokkos::DefaultExecutionSpace>
class Recommender {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "Recommender: ExecSpace must be a Kokkos execution space");
  using memory_space = typename ExecSpace::memory_space;
  using model_type = SessionModel<ExecSpace>;

 public:
  // Sessions per forward pass in recommend_batch (bounds the [B x num_items] score matrix).
  static constexpr std::size_t kChunk = 64;

  // Reads the checkpoint, refusing (DataError) one whose model would need more than `memory_limit`
  // bytes to serve chunks of kChunk sessions (0: the memory available now) before building it.
  explicit Recommender(const std::string& checkpoint_path, std::uint64_t memory_limit = 0)
      : Recommender(load_checkpoint(checkpoint_path, CheckpointLimits{memory_limit, kChunk, false})) {}

  explicit Recommender(const Checkpoint& ckpt)
      : options_(ckpt.options),
        num_items_(static_cast<int>(ckpt.options.get_int("num_items", 0))),
        max_length_(static_cast<int>(ckpt.options.get_int("max_length", 0))),
        items_(ckpt.items),
        ops_(ckpt.ops) {
    if (items_.size() != num_items_)
      throw InvalidArgument("Recommender: the checkpoint's item vocabulary has " + std::to_string(items_.size()) +
                            " tokens, the model " + std::to_string(num_items_) + " items");
    const auto num_ops = ckpt.options.get_int("num_ops", 0);
    if (ops_.size() != num_ops)
      throw InvalidArgument("Recommender: the checkpoint's operation vocabulary has " + std::to_string(ops_.size()) +
                            " tokens, the model " + std::to_string(num_ops) + " operations");
    state_ = std::make_unique<State>(make_model_from<ExecSpace>(ckpt));
    state_->model->freeze();  // fixed state: work that depends on it alone (EMBSR's normalised item table) is done once
    options_ = state_->model->options();
    warm_up();
  }

  Recommendation recommend(const std::vector<SessionEvent>& session, const RecommendOptions& options = {}) const {
    std::vector<const std::vector<SessionEvent>*> one{&session};
    auto out = run(one, options, false);
    return std::move(out.front());
  }

  std::vector<Recommendation> recommend_batch(const std::vector<std::vector<SessionEvent>>& sessions,
                                              const RecommendOptions& options = {}) const {
    std::vector<const std::vector<SessionEvent>*> all;
    all.reserve(sessions.size());
    for (const auto& s : sessions) all.push_back(&s);
    return run(all, options, true);
  }

  const Vocabulary& items() const { return items_; }
  const Vocabulary& operations() const { return ops_; }
  // The model's registered name and its options (data sizes included).
  const std::string& model_name() const { return state_->model->name(); }
  const ModelOptions& options() const { return options_; }
  int num_items() const { return num_items_; }
  int max_length() const { return max_length_; }

 private:
  struct State {
    explicit State(std::unique_ptr<model_type> m) : model(std::move(m)) {}
    std::mutex mutex;
    std::unique_ptr<model_type> model;
    BatchBuilder builder;
    HostBatch host;
    Batch<memory_space> batch;
    Kokkos::View<int**, Kokkos::LayoutRight, memory_space> ids;
    Kokkos::View<float**, Kokkos::LayoutRight, memory_space> values;
  };

  // A session mapped to dense ids.
  struct Prepared {
    std::vector<index_t> items, ops;  // the events fed to the model
    std::unordered_set<index_t> seen;  // every known item of the session (for exclusion)
  };

  std::vector<Recommendation> run(const std::vector<const std::vector<SessionEvent>*>& sessions,
                                  const RecommendOptions& options, bool batch_mode) const {
#if defined(KOKKOS_ENABLE_OPENMP) && defined(KOKKOS_VERSION) && KOKKOS_VERSION < 40000
    if constexpr (std::is_same<ExecSpace, Kokkos::OpenMP>::value) {
      if (Kokkos::OpenMP::in_parallel())
        throw InvalidArgument(
            "Recommender<Kokkos::OpenMP>: called from a thread other than the one that initialised Kokkos (or from "
            "inside an OpenMP parallel region); Kokkos 3's OpenMP backend launches kernels from that thread only. Call "
            "it from that thread, or use Recommender<Kokkos::Serial> to serve from several threads");
    }
#endif
    if (options.k < 1) throw InvalidArgument("Recommender: k must be >= 1, got " + std::to_string(options.k));
    index_t given_op = -1;
    if (!options.next_operation.empty()) {
      const auto id = ops_.find(options.next_operation);
      if (!id) throw InvalidArgument("Recommender: unknown next operation '" + options.next_operation + "'");
      given_op = *id;
    }

    std::vector<Recommendation> out(sessions.size());
    std::vector<Prepared> prepared(sessions.size());
    for (std::size_t s = 0; s < sessions.size(); ++s) {
      try {
        prepare(*sessions[s], options.exclude_session_items, prepared[s], out[s]);
      } catch (const InvalidArgument& e) {
        if (!batch_mode) throw;
        throw InvalidArgument("Recommender: session " + std::to_string(s) + ": " + e.what());
      }
    }

    const int num_items = num_items_;
    for (std::size_t begin = 0; begin < sessions.size(); begin += kChunk) {
      const std::size_t end = std::min(sessions.size(), begin + kChunk);
      ExampleSet set;
      int k_needed = options.k;
      for (std::size_t s = begin; s < end; ++s) {
        const auto& p = prepared[s];
        const index_t next = given_op >= 0 ? given_op : p.ops.back();
        set.add(Span<const index_t>(p.items.data(), p.items.size()), Span<const index_t>(p.ops.data(), p.ops.size()),
                /*target=*/0, next, static_cast<offset_t>(s), 0.0);
        if (options.exclude_session_items)
          k_needed = std::max(k_needed, static_cast<int>(std::min<std::size_t>(
                                            static_cast<std::size_t>(options.k) + p.seen.size(),
                                            static_cast<std::size_t>(num_items))));
      }
      k_needed = std::min(k_needed, num_items);
      std::vector<index_t> ids(set.size());
      for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<index_t>(i);

      std::lock_guard<std::mutex> lock(state_->mutex);
      State& st = *state_;
      st.builder.build(set, Span<const index_t>(ids.data(), ids.size()), st.host);
      st.batch.copy_from(st.host);
      const auto rows = end - begin, cols = static_cast<std::size_t>(k_needed);
      if (st.ids.extent(0) != rows || st.ids.extent(1) != cols) {  // top_k would allocate with initialisation
        st.ids = decltype(st.ids)(Kokkos::view_alloc("embsr::Recommender::ids", Kokkos::WithoutInitializing), rows, cols);
        st.values = decltype(st.values)(Kokkos::view_alloc("embsr::Recommender::values", Kokkos::WithoutInitializing),
                                        rows, cols);
      }
      st.model->top_k(st.batch, k_needed, st.ids, st.values);
      st.model->execution_space_instance().fence();
      const auto host_ids = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), st.ids);
      const auto host_values = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), st.values);
      for (std::size_t s = begin; s < end; ++s) {
        const std::size_t row = s - begin;
        Recommendation& rec = out[s];
        for (std::size_t j = 0; j < cols && rec.items.size() < static_cast<std::size_t>(options.k); ++j) {
          const index_t item = host_ids(row, j);
          if (options.exclude_session_items && prepared[s].seen.count(item)) continue;
          rec.items.push_back(items_.token(item));
          rec.scores.push_back(host_values(row, j));
        }
      }
    }
    return out;
  }

  // One forward pass over kChunk one-event sessions: sizes the model's per-session buffers for
  // every later chunk (see the thread-safety note above).
  void warm_up() {
    ExampleSet set;
    const index_t item = 0, op = 0;
    std::vector<index_t> ids(kChunk);
    for (std::size_t s = 0; s < kChunk; ++s) {
      set.add(Span<const index_t>(&item, 1), Span<const index_t>(&op, 1), 0, 0, static_cast<offset_t>(s), 0.0);
      ids[s] = static_cast<index_t>(s);
    }
    State& st = *state_;
    st.builder.build(set, Span<const index_t>(ids.data(), ids.size()), st.host);
    st.batch.copy_from(st.host);
    st.model->top_k(st.batch, 1, st.ids, st.values);
    st.model->execution_space_instance().fence();
  }

  void prepare(const std::vector<SessionEvent>& session, bool want_seen, Prepared& p, Recommendation& rec) const {
    std::unordered_set<std::string> unknown_items, unknown_ops;
    for (const auto& ev : session) {
      const auto item = items_.find(ev.item);
      const auto op = ops_.find(ev.operation);
      if (!item && unknown_items.insert(ev.item).second) rec.unknown_items.push_back(ev.item);
      if (!op && unknown_ops.insert(ev.operation).second) rec.unknown_operations.push_back(ev.operation);
      if (!item || !op) continue;
      p.items.push_back(*item);
      p.ops.push_back(*op);
      if (want_seen) p.seen.insert(*item);
    }
    if (p.items.empty())
      throw InvalidArgument("empty session: none of the " + std::to_string(session.size()) +
                            " events has a known item and operation");
    const auto L = static_cast<std::size_t>(max_length_);
    if (p.items.size() > L) {
      const auto cut = static_cast<std::ptrdiff_t>(p.items.size() - L);
      p.items.erase(p.items.begin(), p.items.begin() + cut);
      p.ops.erase(p.ops.begin(), p.ops.begin() + cut);
    }
    rec.used_events = p.items.size();
  }

  ModelOptions options_;
  int num_items_ = 0, max_length_ = 0;
  Vocabulary items_, ops_;
  std::unique_ptr<State> state_;  // behind a pointer: the mutex pins it, the Recommender stays movable
};

}  // namespace embsr
