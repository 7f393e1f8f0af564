#pragma once
// The training loop of the paper's protocol: seeded shuffled minibatches, AMSGrad, validation after
// every epoch, early stopping on (H@20, M@20), the best epoch's parameters evaluated on test.
// Any session model (model/session_model.hpp): a model that learns by counting or indexing is fit
// once on the training split (its one "epoch"), then validated, saved and tested the same way.
//
// Early stopping follows the authors' code with one fixed rule: an epoch improves when the relative
// gains of validation H@20 and M@20 over the best so far sum to more than zero; training stops
// after `patience` epochs without improvement. Optional checkpoints: `last.ckpt` (model,
// optimizer and loop state: resuming gives the same losses as an uninterrupted run) after every
// epoch and `best.ckpt` whenever the epoch improves.
//
// The pair stays consistent through a crash at any point: an improving epoch writes last.ckpt
// first, recording the checksum of the best.ckpt about to be written, then best.ckpt. A crash
// between the two leaves a last.ckpt whose best epoch is its own last epoch, so its parameters are
// the best ones: resume() takes them from there and rewrites best.ckpt. Otherwise resume() accepts
// only the best.ckpt whose checksum last.ckpt recorded.
//
// A step that leaves a parameter non-finite stops training (TrainingDiverged, naming the epoch, the
// batch and the parameter) before anything of that epoch is saved: no checkpoint ever holds a NaN.
// Every update is checked: by the model's own check at the start of the next step, and after the
// last step of an epoch by the trainer, before the checkpoints are written.
//
// Data parallelism (TrainOptions::communicator, core/communicator.hpp; MPI in the tools): N
// processes train one model. Every process holds the whole model and the whole data, and draws the
// same global batches (the sampler depends on the seed and the epoch only). Each takes its
// contiguous share of the global batch (share_of), computes the loss and gradients of its share,
// and weighs them by its share of the loss's terms: w_r / W, with w_r = last_loss_terms() (the
// share's sessions, or BERT4Rec's masked positions) and W their sum over the processes (one sum of
// two doubles). One sum of the flat gradient store over the processes then gives every process the
// gradient of the global batch's mean loss, and every process takes the same optimizer step, so the
// parameters stay identical without ever being sent. Validation and test are ranked in shares too
// (evaluate_ranks with the communicator). Only the root process (rank 0) writes checkpoints; the
// checkpoints hold nothing that depends on N, so a run resumes with any N. A model that learns by
// counting is fit by every process on the whole training split (a pass over the data).
// One process (the default) runs exactly the code of before: no weighting, no sums.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/communicator.hpp>
#include <embsr/core/error.hpp>
#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/io/atomic_file.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/model/session_model.hpp>
#include <embsr/optim/adam.hpp>
#include <embsr/train/evaluate.hpp>
#include <embsr/train/metrics.hpp>
#include <embsr/train/progress.hpp>

namespace embsr {

struct TrainOptions {
  int epochs = 50;
  int patience = 10;              // epochs without validation gain before stopping
  std::size_t batch_size = 512;
  std::size_t eval_batch_size = 512;
  AdamOptions adam;
  std::uint64_t shuffle_seed = 1;
  bool progress = true;           // progress bar / lines on stderr
  std::string checkpoint_dir;     // empty: no checkpoints
  std::uint64_t memory_limit = 0; // bytes a resumed checkpoint may need (0: the available memory)
  // The processes training this model together (data parallelism; see the top of this file). Not
  // owned; nullptr: this process alone.
  Communicator* communicator = nullptr;
  // Called after every optimizer step with (global step, the global batch's mean loss); on every
  // process. Optional (embsr-train --loss-log writes them).
  std::function<void(std::uint64_t, double)> on_step;

  void validate() const {
    if (epochs < 1) throw InvalidArgument("TrainOptions: epochs must be >= 1, got " + std::to_string(epochs));
    if (patience < 1) throw InvalidArgument("TrainOptions: patience must be >= 1, got " + std::to_string(patience));
    if (batch_size < 1 || eval_batch_size < 1) throw InvalidArgument("TrainOptions: batch sizes must be >= 1");
    adam.validate();
  }
};

struct EpochRecord {
  int epoch = 0;                  // 1-based
  double train_loss = 0;          // mean over the epoch's batches
  double train_seconds = 0, eval_seconds = 0;
  RankingMetrics valid;
  RepeatExploreMetrics valid_split;  // valid, split by whether the target is already in the session
  bool improved = false;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  int best_epoch = 0;             // 1-based; the parameters the model holds after run()
  RankingMetrics best_valid, test;
  std::vector<std::size_t> test_ranks;  // rank of each test example's target (split_repeat_explore)
  bool stopped_early = false;
  double seconds = 0;
};

// Training stopped because a step left parameters non-finite (too high a learning rate, usually).
class TrainingDiverged : public Error {
 public:
  explicit TrainingDiverged(const std::string& what) : Error(what) {}
};

template <class ExecSpace>
class Trainer {
 public:
  using Model = SessionModel<ExecSpace>;
  using memory_space = typename ExecSpace::memory_space;

  // `on_epoch` (optional) sees every epoch's record as soon as it is complete. The model must
  // outlive the trainer.
  Trainer(Model& model, const PreparedData& data, TrainOptions options)
      : model_(model), data_(data), options_(std::move(options)), adam_(num_parameters(model), options_.adam),
        comm_(options_.communicator != nullptr ? *options_.communicator : single_process()) {
    options_.validate();
    if (data_.train.empty()) throw InvalidArgument("Trainer: the training split is empty");
    state_.shuffle_seed = options_.shuffle_seed;
  }
  // A concrete session model (EMBSR<ExecSpace, float>, PopularityModel<ExecSpace, ...>, ...).
  template <class Concrete, class = std::enable_if_t<is_session_model<Concrete>::value>>
  Trainer(Concrete& model, const PreparedData& data, TrainOptions options)
      : Trainer(std::make_unique<ModelAdapter<Concrete>>(model), data, std::move(options)) {}

  std::function<void(const EpochRecord&)> on_epoch;

  Adam<ExecSpace, float>& optimizer() { return adam_; }
  const TrainingState& state() const { return state_; }

  // Continues from a checkpoint written by this trainer (`last.ckpt`): parameters, optimizer and
  // loop state; the best parameters come from the `best.ckpt` beside it that last.ckpt refers to
  // (see the top of this file). Throws DataError when that best.ckpt is missing or another file.
  // With several processes every one reads the files (they must be on a file system all of them
  // see); only the root rewrites a best.ckpt that a crash left behind.
  void resume(const std::string& last_checkpoint) {
    CheckpointLimits limits;
    limits.memory_bytes = options_.memory_limit;
    limits.batch_sessions = std::max(options_.batch_size, options_.eval_batch_size);
    limits.training = true;
    const Checkpoint ckpt = load_checkpoint(last_checkpoint, limits);
    restore(ckpt, model_, learns_by_gradients() ? &adam_ : nullptr);
    state_ = ckpt.training;
    best_values_.clear();
    if (state_.best_epoch <= 0) return;
    const std::string best = sibling(last_checkpoint, "best.ckpt");
    const auto best_epoch = static_cast<std::uint64_t>(state_.best_epoch);
    if (best_epoch == state_.epoch) {
      // The last epoch was the best: last.ckpt holds the best parameters. best.ckpt is that epoch's
      // file unless the run died between writing the two; then it is written again here.
      best_values_ = ckpt.values;
      if (comm_.is_root() && !holds_recorded_best(best, limits)) {
        Checkpoint again = ckpt;
        again.has_optimizer = false;
        again.optimizer = OptimizerState{};
        again.training.best_checksum = 0;
        save_checkpoint(best, again);
      }
      return;
    }
    if (!file_exists(best))
      throw DataError(best, 0,
                      "missing: " + last_checkpoint + " refers to the best epoch " + std::to_string(state_.best_epoch) +
                          " saved in this file; without it the run cannot report or ship its best model");
    Checkpoint recorded = load_checkpoint(best, limits);
    if (!is_recorded_best(recorded))
      throw DataError(best, 0,
                      "is not the best.ckpt that " + last_checkpoint + " refers to (it records best epoch " +
                          std::to_string(state_.best_epoch) + ", this file holds epoch " +
                          std::to_string(recorded.training.best_epoch) +
                          (state_.best_checksum != 0 ? " and another checksum" : "") +
                          "): refusing to resume with the wrong best model");
    if (recorded.values.size() != ckpt.values.size())
      throw DataError(best, 0, "holds " + std::to_string(recorded.values.size()) + " parameters, " + last_checkpoint + " " +
                                   std::to_string(ckpt.values.size()));
    best_values_ = std::move(recorded.values);
  }

  TrainResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    TrainResult result;
    if (!options_.checkpoint_dir.empty() && comm_.is_root()) check_directory_writable(options_.checkpoint_dir);
    BatchSampler sampler(data_.train.size(), options_.batch_size, /*shuffle=*/true, state_.shuffle_seed);
    BatchBuilder builder;
    HostBatch host;
    Batch<memory_space> batch;
    // A model that learns by counting or indexing learns all it can in one pass.
    const int epochs = learns_by_gradients() ? options_.epochs : 1;
    for (int epoch = static_cast<int>(state_.epoch); epoch < epochs; ++epoch) {
      EpochRecord record;
      record.epoch = epoch + 1;
      const auto te = std::chrono::steady_clock::now();
      if (learns_by_gradients()) {
        record.train_loss = train_epoch(epoch, sampler, builder, host, batch);
      } else {
        model_.fit(data_.train);
      }
      const auto tv = std::chrono::steady_clock::now();
      record.train_seconds = std::chrono::duration<double>(tv - te).count();
      if (!data_.valid.empty()) {
        const auto ranks = evaluate_ranks(model_, data_.valid, options_.eval_batch_size, comm_);
        for (const std::size_t rank : ranks) record.valid.add_rank(rank);
        record.valid_split = split_repeat_explore(data_.valid, ranks);
      }
      record.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tv).count();

      record.improved = improves(record.valid);
      if (record.improved) {
        state_.best_epoch = record.epoch;
        state_.best_hit20 = record.valid.hit(20);
        state_.best_mrr20 = record.valid.mrr(20);
        state_.epochs_without_gain = 0;
        best_values_ = copy_values();
      } else {
        ++state_.epochs_without_gain;
      }
      state_.epoch = static_cast<std::uint64_t>(epoch + 1);
      save(record.improved);
      history_.push_back(record);
      if (on_epoch) on_epoch(record);
      if (state_.epochs_without_gain >= options_.patience) {
        result.stopped_early = true;
        break;
      }
    }
    // The best epoch's parameters, evaluated on test.
    if (!best_values_.empty()) load_values(best_values_);
    result.history = history_;
    result.best_epoch = state_.best_epoch;
    for (const auto& r : history_)
      if (r.epoch == state_.best_epoch) result.best_valid = r.valid;
    if (!data_.test.empty()) {
      result.test_ranks = evaluate_ranks(model_, data_.test, options_.eval_batch_size, comm_);
      for (const std::size_t r : result.test_ranks) result.test.add_rank(r);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
  }

 private:
  // One epoch of shuffled minibatch steps; returns the mean loss of its batches.
  double train_epoch(int epoch, BatchSampler& sampler, BatchBuilder& builder, HostBatch& host,
                     Batch<memory_space>& batch) {
    sampler.set_epoch(static_cast<std::uint64_t>(epoch));
    ProgressBar bar(stderr, "epoch " + std::to_string(epoch + 1), sampler.num_batches(), options_.progress ? -1 : 0);
    double loss_sum = 0;
    for (std::size_t b = 0; b < sampler.num_batches(); ++b) {
      const Span<const index_t> global = sampler.batch(b);
      double loss = 0;
      try {
        loss = comm_.size() == 1 ? step_alone(global, builder, host, batch) : step_together(global, builder, host, batch);
      } catch (const NonFiniteValue& e) {
        diverged(epoch + 1, b, sampler.num_batches(), e.what());
      }
      loss_sum += loss;
      adam_.step(model_.execution_space_instance(), model_.parameters()->values(), model_.parameters()->grads());
      ++state_.global_step;
      if (options_.on_step) options_.on_step(state_.global_step, loss);
      if (options_.progress) bar.update(b + 1, loss_sum / static_cast<double>(b + 1));
    }
    // ... and the update of the epoch's last batch is checked here, before anything is saved.
    try {
      model_.check_parameters_finite();
    } catch (const NonFiniteValue& e) {
      diverged(epoch + 1, sampler.num_batches(), sampler.num_batches(), e.what());
    }
    return loss_sum / static_cast<double>(sampler.num_batches());
  }

  // The loss and gradients of the global batch, in this process alone.
  double step_alone(Span<const index_t> global, BatchBuilder& builder, HostBatch& host, Batch<memory_space>& batch) {
    builder.build(data_.train, global, host);
    batch.copy_from(host);
    // The model checks its parameters at the start of every step (one reduction, already paid):
    // a non-finite one there was made by the update of the previous batch.
    return model_.loss_and_backward(batch, state_.global_step, /*training=*/true);
  }

  // The same with this process's share of the global batch, its gradients weighed and summed over
  // the processes (see the top of this file). A process whose share is empty (a global batch
  // smaller than the number of processes) contributes zeros.
  double step_together(Span<const index_t> global, BatchBuilder& builder, HostBatch& host, Batch<memory_space>& batch) {
    const Share mine = share_of(global.size(), comm_.rank(), comm_.size());
    auto& parameters = *model_.parameters();
    double my_terms = 0;                // w_r
    double terms_and_loss[2] = {0, 0};  // [w_r, w_r * loss_r], then their sums
    if (mine.size() > 0) {
      builder.build(data_.train, Span<const index_t>(global.data() + mine.begin, mine.size()), host);
      batch.copy_from(host);
      const double loss = model_.loss_and_backward(batch, state_.global_step, /*training=*/true);
      my_terms = model_.last_loss_terms(batch);
      terms_and_loss[0] = my_terms;
      terms_and_loss[1] = my_terms * loss;
    } else {
      model_.check_parameters_finite();
      parameters.zero_grads();
    }
    comm_.allreduce_sum(terms_and_loss, 2);
    if (!(terms_and_loss[0] > 0)) throw Error("data-parallel step: the global batch has no loss terms");
    const auto weight = static_cast<float>(my_terms / terms_and_loss[0]);
    const auto& exec = model_.execution_space_instance();
    scale_in_place(exec, parameters.grads(), weight);
    allreduce_sum(comm_, exec, parameters.grads());
    return terms_and_loss[1] / terms_and_loss[0];
  }

  // Relative gains of H@20 and M@20 summed (MODEL.md 6; the authors' code keeps either's best).
  bool improves(const RankingMetrics& v) const {
    if (state_.best_epoch < 0) return true;
    if (data_.valid.empty()) return true;  // nothing to select on: the last epoch is the best
    auto gain = [](double now, double best) { return best > 0 ? (now - best) / best : (now > 0 ? 1.0 : 0.0); };
    return gain(v.hit(20), state_.best_hit20) + gain(v.mrr(20), state_.best_mrr20) > 0;
  }

  std::vector<float> copy_values() const {
    if (model_.parameters() == nullptr) return {};  // a counting model: its one epoch is the best
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_.parameters()->values());
    return std::vector<float>(host.data(), host.data() + host.extent(0));
  }
  void load_values(const std::vector<float>& v) {
    Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> src(v.data(), v.size());
    Kokkos::deep_copy(model_.parameters()->values(), src);
  }

  // `batch` (0-based) is the batch whose forward pass found the problem (`batches`: after the last
  // one), so the update that made it was that of batch `batch` counted from 1 (or the loss of
  // batch `batch` + 1 itself when the parameters are finite).
  [[noreturn]] void diverged(int epoch, std::size_t batch, std::size_t batches, const std::string& what) {
    const std::string where = batch == 0 ? "at its first batch"
                                         : "after the update of batch " + std::to_string(batch) + " of " +
                                               std::to_string(batches);
    throw TrainingDiverged("training diverged in epoch " + std::to_string(epoch) + ", " + where + " (step " +
                           std::to_string(state_.global_step) + "): " + what +
                           ". Nothing of this epoch was saved; try a lower learning rate");
  }

  // last.ckpt first (recording best.ckpt's checksum), then best.ckpt: see the top of this file.
  void save(bool improved) {
    if (options_.checkpoint_dir.empty() || !comm_.is_root()) return;
    std::string best_bytes;
    if (improved) {
      TrainingState best_state = state_;
      best_state.best_checksum = 0;  // a best.ckpt refers to no other file
      best_bytes = encode_checkpoint(
          make_checkpoint<ExecSpace>(model_, data_.item_vocab, data_.op_vocab, nullptr, best_state));
      state_.best_checksum = checkpoint_checksum(best_bytes);
    }
    save_checkpoint(options_.checkpoint_dir + "/last.ckpt",
                    make_checkpoint<ExecSpace>(model_, data_.item_vocab, data_.op_vocab, learns_by_gradients() ? &adam_ : nullptr,
                                               state_));
    if (improved) write_file_atomically(options_.checkpoint_dir + "/best.ckpt", best_bytes);
  }

  // A best.ckpt is the one last.ckpt recorded: same checksum (version 2), or same best epoch for a
  // last.ckpt of version 1, which recorded no checksum.
  bool is_recorded_best(const Checkpoint& best) const {
    if (state_.best_checksum != 0) return best.file_checksum == state_.best_checksum;
    return best.training.best_epoch == state_.best_epoch;
  }
  bool holds_recorded_best(const std::string& path, const CheckpointLimits& limits) const {
    if (!file_exists(path)) return false;
    try {
      return is_recorded_best(load_checkpoint(path, limits));
    } catch (const DataError&) {
      return false;
    }
  }

  static std::string sibling(const std::string& path, const std::string& name) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? name : path.substr(0, slash + 1) + name;
  }
  static bool file_exists(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return false;
    std::fclose(f);
    return true;
  }

  Trainer(std::unique_ptr<Model> view, const PreparedData& data, TrainOptions options)
      : Trainer(*view, data, std::move(options)) {
    view_ = std::move(view);
  }
  static std::size_t num_parameters(const Model& model) {
    return model.parameters() != nullptr ? model.parameters()->size() : 0;
  }
  bool learns_by_gradients() const { return model_.learns_by_gradients(); }

  std::unique_ptr<Model> view_;  // owns the adapter of a concrete model (model_ refers to it)
  Model& model_;
  const PreparedData& data_;
  TrainOptions options_;
  Adam<ExecSpace, float> adam_;
  Communicator& comm_;
  TrainingState state_;
  std::vector<EpochRecord> history_;
  std::vector<float> best_values_;
};

}  // namespace embsr
