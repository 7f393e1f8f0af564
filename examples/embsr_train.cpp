// embsr-train: train a model of the library (EMBSR by default) on a session log, report the
// paper's metrics, save the model.
//
//   embsr-train --format jd FILE... [--model NAME] [--min-support 5 --max-length 40]
//               [--epochs 50 --batch 512 ...] [--output DIR]
//   embsr-train --list-models
//
// Every registered model (model/registry.hpp) trains, evaluates and checkpoints the same way; a
// flag of a model option that the chosen model does not take (--d for s-pop) is an error, as are
// the training flags (--lr, --epochs, ...) for a model that learns by counting.
//
// Data-parallel on MPI (where embsr-train was built with one): `mpirun -np N embsr-train ...` trains
// the same model with N ranks: every global batch (--batch) is split over the ranks, their
// gradients summed by one MPI_Allreduce per step, every rank takes the same AMSGrad step
// (train/trainer.hpp says how, and why the losses equal one process's). Evaluation is sharded. Only
// rank 0 prints and writes DIR; --resume reads the checkpoint on every rank, so it must be on a file
// system they all see; a run resumes with any N. Each rank's threads: OMP_NUM_THREADS / --threads.
// A rank that fails stops the whole job (MPI_Abort) with its message.
//
// Writes into DIR: best.ckpt (the best validation epoch's model, for embsr-recommend), last.ckpt
// (model + optimizer + loop state, for --resume), metrics.json (configuration, per-epoch metrics and
// timings, test metrics), curve.csv (the training curve) and curve.png (loss and validation H@20 /
// M@20 per epoch, drawn with gnuplot when it is installed), and with --loss-log FILE the loss of
// every optimizer step (step,loss).
#include <embsr/core/communicator.hpp>
#include <embsr/core/memory.hpp>
#include <embsr/embsr.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp
#include <embsr/io/atomic_file.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/train/trainer.hpp>

#include "common/dataset_options.hpp"
#include "common/model_setup.hpp"
#include "common/standard_output.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#ifdef EMBSR_WITH_MPI
#include <embsr/dist/mpi_communicator.hpp>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>

namespace {

struct Args {
  embsr::cli::DatasetOptions data;
  embsr::Config model;  // the values of the model flags (each sets a model option only when given)
  embsr::TrainOptions train;
  std::string model_name = "embsr";
  std::string next_op = "given", fusion = "gate", output = "embsr-run", resume, loss_log;
  bool no_attention = false, no_gnn = false, no_run_gru = false, no_relations = false, no_progress = false;
  bool baselines = false, list_models = false;
  int threads = 0;
  std::string memory_limit;  // "" or "0": the memory available when the run starts
};

using embsr::cli::metrics_json;

// The run's configuration: data, model (its name and every option, data sizes included) and
// training. The model's options keep their own names (d, gnn_steps, seed, ...).
nlohmann::json config_json(const Args& a, const embsr::SessionModel<Kokkos::DefaultExecutionSpace>& model) {
  nlohmann::json j = {{"files", a.data.files},
                      {"format", a.data.format},
                      {"min_item_support", a.data.pre.min_item_support},
                      {"max_length", a.data.pre.max_length},
                      {"train_fraction", a.data.pre.train_fraction},
                      {"valid_fraction", a.data.pre.valid_fraction},
                      {"model", model.name()},
                      {"threads", Kokkos::DefaultExecutionSpace().concurrency()},
                      {"backend", Kokkos::DefaultExecutionSpace::name()}};
  const embsr::ModelOptions options = model.options();  // by value: keep it alive for the loop
  for (const auto& [key, value] : options.items()) {
    if (key == "max_length") continue;  // the preprocessing's, above
    const auto* spec = model.spec().option(key);
    if (spec != nullptr && spec->kind == embsr::OptionKind::Boolean) j[key] = value == "true";
    else if (spec != nullptr && spec->kind != embsr::OptionKind::Choice) j[key] = nlohmann::json::parse(value);
    else j[key] = value;
  }
  if (model.learns_by_gradients()) {
    j["lr"] = a.train.adam.lr;
    j["weight_decay"] = a.train.adam.weight_decay;
    j["batch_size"] = a.train.batch_size;
    j["epochs"] = a.train.epochs;
    j["patience"] = a.train.patience;
  }
  return j;
}

// The flags that set a model option, by option name (all EMBSR's today; a new model's options get
// their flags here or through --option KEY=VALUE).
struct ModelFlag {
  const char* flag;
  const char* option;
};
constexpr ModelFlag kModelFlags[] = {
    {"--d", "d"},           {"--gnn-steps", "gnn_steps"}, {"--dropout", "dropout"},
    {"--w-k", "w_k"},       {"--seed", "seed"},           {"--next-op", "next_op"},
    {"--no-attention", "attention"}, {"--no-gnn", "gnn"}, {"--no-run-gru", "run_gru"},
    {"--no-relations", "relations"}, {"--fusion", "fusion"}, {"--fixed-beta", "fixed_beta"}};
constexpr const char* kTrainingFlags[] = {"--lr", "--weight-decay", "--batch", "--epochs", "--patience", "--resume"};

// The model options the user set: from the flags given (and only those: the model's own defaults,
// its preset's included, fill in the rest), then every --option KEY=VALUE.
embsr::ModelOptions model_options_from_flags(const CLI::App& app, const Args& a,
                                             const std::vector<std::string>& extra) {
  const embsr::ModelSpec& spec = embsr::find_model_spec(a.model_name);
  const embsr::ModelOptions flag_values = embsr::embsr_options(a.model);
  embsr::ModelOptions given;
  for (const auto& f : kModelFlags) {
    if (app.count(f.flag) == 0) continue;
    const auto* option = spec.option(f.option);
    if (option == nullptr || option->from_data)
      throw embsr::InvalidArgument("model '" + a.model_name + "' does not take " + f.flag + " (option '" + f.option +
                                   "'); see embsr-train --list-models");
    if (std::string(f.option) == "next_op") given.set("next_op", a.next_op);
    else if (std::string(f.option) == "fusion") given.set("fusion", a.fusion);
    else if (std::string(f.flag).rfind("--no-", 0) == 0) given.set(f.option, false);
    else given.set(f.option, *flag_values.find(f.option));
  }
  if (!spec.info.learns_by_gradients)
    for (const char* flag : kTrainingFlags)
      if (app.count(flag) > 0)
        throw embsr::InvalidArgument("model '" + a.model_name + "' learns by counting, not by gradients: " + flag +
                                     " does not apply to it");
  for (const std::string& kv : extra) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw embsr::InvalidArgument("--option '" + kv + "': expected KEY=VALUE");
    const std::string key = kv.substr(0, eq);
    const auto* option = spec.option(key);
    if (option != nullptr && option->from_data)
      throw embsr::InvalidArgument("--option " + key + ": set from the data, not on the command line");
    given.set(key, kv.substr(eq + 1));
  }
  return given;
}

int list_models() {
  std::printf("%-10s %-12s %s\n", "name", "learns by", "description (paper)");
  for (const auto& spec : embsr::model_catalog()) {
    std::printf("%-10s %-12s %s (%s)\n", spec.info.name.c_str(), spec.info.learns_by_gradients ? "gradients" : "counting",
                spec.info.description.c_str(), spec.info.paper.c_str());
    std::string options;
    for (const auto& o : spec.options)
      if (!o.from_data) options += (options.empty() ? "" : " ") + o.key + "=" + o.default_value;
    std::printf("%-10s %-12s family: %s; options: %s\n", "", "", spec.info.family.c_str(),
                options.empty() ? "none" : options.c_str());
  }
  embsr::cli::check_standard_output();
  return 0;
}

void plot(const std::string& dir) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "note: gnuplot not found, %s/curve.png not drawn (curve.csv has the data)\n", dir.c_str());
    return;
  }
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,420 noenhanced\n"
     << "set output '" << dir << "/curve.png'\n"
     << "set datafile separator ','\nset key outside bottom center horizontal\nset multiplot layout 1,2\n"
     << "set title 'training loss'\nset xlabel 'epoch'\nplot '" << dir
     << "/curve.csv' using 1:2 skip 1 with linespoints title 'loss'\n"
     << "set title 'validation (%)'\nset xlabel 'epoch'\nplot '" << dir
     << "/curve.csv' using 1:3 skip 1 with linespoints title 'H@20', '' using 1:4 skip 1 with linespoints title 'M@20'\n"
     << "unset multiplot\n";
  embsr::write_file_atomically(dir + "/curve.gp", gp.str());
  if (std::system(("gnuplot '" + dir + "/curve.gp' 2>/dev/null").c_str()) != 0)
    std::fprintf(stderr, "note: gnuplot failed, %s/curve.png not drawn\n", dir.c_str());
}

int run(Args& a, const embsr::ModelOptions& given, embsr::Communicator& comm) {
  namespace fs = std::filesystem;
  const bool root = comm.is_root();
  a.train.progress = !a.no_progress && root;
  a.train.communicator = &comm;
  a.data.pre.validate();
  if (!a.memory_limit.empty()) a.train.memory_limit = embsr::parse_byte_size(a.memory_limit);
  // The output directory must be writable before the data is even read, not after an epoch. Only
  // rank 0 writes it (the other ranks may not even see it).
  if (root) {
    std::error_code ec;
    fs::create_directories(a.output, ec);
    if (ec) throw embsr::Error("cannot create output directory '" + a.output + "': " + ec.message());
    embsr::check_directory_writable(a.output);
  }

  const embsr::PreparedData data = a.data.load_prepared();
  const embsr::ModelOptions options = embsr::cli::options_for_data(a.model_name, given, data, a.data.pre);
  const embsr::ModelSpec& spec = embsr::find_model_spec(a.model_name);
  // One seed for the model and the shuffling (--seed or --option seed=...), as in the paper's code.
  a.train.shuffle_seed = options.get_uint("seed", a.model.seed);

  a.train.checkpoint_dir = a.output;
  using Exec = Kokkos::DefaultExecutionSpace;
  embsr::cli::check_model_fits(a.model_name, options, a.train.batch_size, a.train.eval_batch_size,
                               a.train.memory_limit);
  const auto model = embsr::make_model<Exec>(a.model_name, options);
  const std::size_t parameters = model->parameters() != nullptr ? model->parameters()->size() : 0;
  const bool embsr_family = spec.info.base_name() == "embsr";
  if (embsr_family)
    std::printf("model: %s (EMBSR%s), %zu parameters, next operation %s, %s backend with %d threads\n",
                a.model_name.c_str(), a.model_name == "embsr" ? "" : " preset", parameters,
                options.find("next_op")->c_str(), Exec::name(), Exec().concurrency());
  else
    std::printf("model: %s (%s), %zu parameters, %s backend with %d threads\n", a.model_name.c_str(),
                spec.info.description.c_str(), parameters, Exec::name(), Exec().concurrency());
  if (comm.size() > 1) {
    char reduction[192];
    std::snprintf(reduction, sizeof reduction, "gradients of %zu floats (%.2f MiB) summed every step %s", parameters,
                  static_cast<double>(parameters) * sizeof(float) / (1024.0 * 1024.0),
                  embsr::reduction_path<Exec::memory_space>(comm).c_str());
    std::printf("data-parallel: %s; %d threads per rank; global batch %zu split over the ranks; %s\n",
                comm.describe().c_str(), Exec().concurrency(), a.train.batch_size,
                model->learns_by_gradients() ? reduction
                                             : "every rank fits the model on the whole training split, evaluation is sharded");
  }
  // Every step's loss (the global batch's mean), written with the curve after every epoch.
  std::ostringstream step_losses;
  step_losses << "step,loss\n";
  if (!a.loss_log.empty() && root) {
    step_losses.precision(9);
    a.train.on_step = [&step_losses](std::uint64_t step, double loss) { step_losses << step << ',' << loss << '\n'; };
    embsr::write_file_atomically(a.loss_log, step_losses.str());
  }
  embsr::Trainer<Exec> trainer(*model, data, a.train);
  if (!a.resume.empty()) {
    trainer.resume(a.resume);
    std::printf("resumed from %s after epoch %llu\n", a.resume.c_str(),
                static_cast<unsigned long long>(trainer.state().epoch));
  }
  // The curve is rewritten whole (atomically) after every epoch: always readable, and a write
  // failure stops the run at the epoch it happened in.
  std::ostringstream csv;
  csv << "epoch,train_loss,valid_H@20,valid_M@20,train_seconds,eval_seconds,valid_repeat_H@20,valid_explore_H@20\n";
  trainer.on_epoch = [&](const embsr::EpochRecord& r) {
    if (model->learns_by_gradients())
      std::printf("epoch %3d  loss %.4f  valid H@20 %6.2f  M@20 %6.2f  (repeat %6.2f explore %6.2f)  (%.1f s + %.1f s)%s\n",
                  r.epoch, r.train_loss, 100 * r.valid.hit(20), 100 * r.valid.mrr(20), 100 * r.valid_split.repeat.hit(20),
                  100 * r.valid_split.explore.hit(20), r.train_seconds, r.eval_seconds, r.improved ? "  *best*" : "");
    else  // a counting model: one fit, no loss
      std::printf("fit on the training split  valid H@20 %6.2f  M@20 %6.2f  (%.2f s + %.1f s)\n", 100 * r.valid.hit(20),
                  100 * r.valid.mrr(20), r.train_seconds, r.eval_seconds);
    embsr::cli::check_standard_output();
    csv << r.epoch << ',' << r.train_loss << ',' << 100 * r.valid.hit(20) << ',' << 100 * r.valid.mrr(20) << ','
        << r.train_seconds << ',' << r.eval_seconds << ',' << 100 * r.valid_split.repeat.hit(20) << ','
        << 100 * r.valid_split.explore.hit(20) << '\n';
    if (!root) return;
    embsr::write_file_atomically(a.output + "/curve.csv", csv.str());
    if (!a.loss_log.empty()) embsr::write_file_atomically(a.loss_log, step_losses.str());
  };
  if (root) embsr::write_file_atomically(a.output + "/curve.csv", csv.str());  // this run's curve (a resumed run's too)
  const embsr::TrainResult result = trainer.run();
  if (!root) return 0;  // every rank holds the same model and metrics; rank 0 reports them

  std::printf("\nbest epoch %d of %zu%s; test metrics (%zu sessions, %%):\n%s", result.best_epoch, result.history.size(),
              result.stopped_early ? " (stopped early)" : "", result.test.sessions, result.test.table().c_str());
  nlohmann::json j = {{"config", config_json(a, *model)},
                      {"data",
                       {{"train", data.train.size()}, {"valid", data.valid.size()}, {"test", data.test.size()},
                        {"items", data.item_vocab.size()}, {"operations", data.op_vocab.size()}}},
                      {"best_epoch", result.best_epoch},
                      {"stopped_early", result.stopped_early},
                      {"seconds", result.seconds},
                      {"test", metrics_json(result.test)},
                      {"best_valid", metrics_json(result.best_valid)}};
  for (const auto& r : result.history)
    j["epochs"].push_back({{"epoch", r.epoch},
                           {"train_loss", r.train_loss},
                           {"train_seconds", r.train_seconds},
                           {"eval_seconds", r.eval_seconds},
                           {"improved", r.improved},
                           {"valid", metrics_json(r.valid)},
                           {"valid_repeat", metrics_json(r.valid_split.repeat)},
                           {"valid_explore", metrics_json(r.valid_split.explore)}});
  const auto split = embsr::split_repeat_explore(data.test, result.test_ranks);
  j["test_repeat"] = metrics_json(split.repeat);
  j["test_explore"] = metrics_json(split.explore);
  if (a.baselines) {
    // POP and S-POP through the same interface and evaluation as the model.
    auto fitted = [&](const char* name) {
      embsr::ModelOptions o;
      o.set("num_items", data.item_vocab.size()).set("num_ops", data.op_vocab.size()).set("max_length", a.data.pre.max_length);
      auto baseline = embsr::make_model<Exec>(name, o);
      baseline->fit(data.train);
      return baseline;
    };
    const auto pop = fitted("pop"), spop = fitted("s-pop");
    const auto pop_r = embsr::evaluate_ranks(*pop, data.test, a.train.eval_batch_size);
    const auto spop_r = embsr::evaluate_ranks(*spop, data.test, a.train.eval_batch_size);
    embsr::RankingMetrics pop_m, spop_m;
    for (std::size_t e = 0; e < data.test.size(); ++e) {
      pop_m.add_rank(pop_r[e]);
      spop_m.add_rank(spop_r[e]);
    }
    std::printf("\nbaselines on test (%%):\nPOP\n%sS-POP\n%s", pop_m.table().c_str(), spop_m.table().c_str());
    const auto spop_split = embsr::split_repeat_explore(data.test, spop_r);
    j["baselines"] = {{"POP", metrics_json(pop_m)},
                      {"S-POP", metrics_json(spop_m)},
                      {"S-POP_repeat", metrics_json(spop_split.repeat)},
                      {"S-POP_explore", metrics_json(spop_split.explore)}};
    // Where the model wins or loses against S-POP: targets already in the session vs new ones.
    std::printf("\ntest H@20 / M@20 (%%) by target: repeat = already in the session (%zu), explore = new (%zu)\n",
                split.repeat.sessions, split.explore.sessions);
    const int width = static_cast<int>(std::max<std::size_t>(a.model_name.size(), 5));
    std::printf("%-*s  repeat %6.2f / %6.2f   explore %6.2f / %6.2f\n", width, a.model_name.c_str(),
                100 * split.repeat.hit(20), 100 * split.repeat.mrr(20), 100 * split.explore.hit(20),
                100 * split.explore.mrr(20));
    std::printf("%-*s  repeat %6.2f / %6.2f   explore %6.2f / %6.2f\n", width, "S-POP", 100 * spop_split.repeat.hit(20),
                100 * spop_split.repeat.mrr(20), 100 * spop_split.explore.hit(20), 100 * spop_split.explore.mrr(20));
    // The one comparison that decides whether a model is worth serving on these data: does it beat
    // counting the session's own items?
    std::printf("\n%s against S-POP on test: H@20 %.2f vs %.2f (%+.2f), M@20 %.2f vs %.2f (%+.2f)\n",
                a.model_name.c_str(), 100 * result.test.hit(20), 100 * spop_m.hit(20),
                100 * (result.test.hit(20) - spop_m.hit(20)), 100 * result.test.mrr(20), 100 * spop_m.mrr(20),
                100 * (result.test.mrr(20) - spop_m.mrr(20)));
  }
  embsr::write_file_atomically(a.output + "/metrics.json", j.dump(2) + "\n");
  plot(a.output);
  std::printf("\nwrote %s/{best.ckpt,last.ckpt,metrics.json,curve.csv,curve.png}\n", a.output.c_str());
  std::printf("recommend with: embsr-recommend --model %s/best.ckpt --input sessions.jsonl\n", a.output.c_str());
  embsr::cli::check_standard_output();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef EMBSR_WITH_MPI
  // Before anything else: MPI may rewrite argv. Started without an MPI launcher, embsr-train is one
  // process and leaves MPI alone (MpiSession::launched() says why).
  std::optional<embsr::MpiSession> mpi;
  std::optional<embsr::MpiCommunicator> mpi_comm;
  if (embsr::MpiSession::launched()) {
    mpi.emplace(&argc, &argv);
    mpi_comm.emplace();
  }
  embsr::Communicator& comm = mpi_comm ? static_cast<embsr::Communicator&>(*mpi_comm) : embsr::single_process();
#else
  embsr::Communicator& comm = embsr::single_process();
#endif
  CLI::App app{"embsr-train: train a session-based recommendation model (EMBSR by default) and report H@K / M@K"};
  Args a;
  std::vector<std::string> extra_options;
  // --list-models needs no data files (which are otherwise required).
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--list-models") return list_models();
  a.data.use_training_defaults();
  a.data.add_to(&app);
  app.add_option("--model", a.model_name, "the model to train (embsr-train --list-models)")->capture_default_str();
  app.add_flag("--list-models", a.list_models, "list the models: name, how it learns, description, paper, options");
  app.add_option("--option", extra_options, "a model option as KEY=VALUE (repeatable; see --list-models)");
  app.add_option("--d", a.model.d, "embedding size")->capture_default_str();
  app.add_option("--gnn-steps", a.model.gnn_steps)->capture_default_str();
  app.add_option("--dropout", a.model.dropout)->capture_default_str();
  app.add_option("--w-k", a.model.w_k, "normalised-scoring weight")->capture_default_str();
  app.add_option("--seed", a.model.seed, "seed of initialisation, shuffling and dropout")->capture_default_str();
  app.add_option("--next-op", a.next_op, "next operation: given (the paper's protocol) or learned [NEXT]")
      ->check(CLI::IsMember({"given", "learned"}))
      ->capture_default_str();
  app.add_flag("--no-attention", a.no_attention, "ablation EMBSR-NS");
  app.add_flag("--no-gnn", a.no_gnn, "ablation EMBSR-NG");
  app.add_flag("--no-run-gru", a.no_run_gru, "ablation: no operation GRU");
  app.add_flag("--no-relations", a.no_relations, "ablation: absolute operations, standard attention");
  app.add_option("--fusion", a.fusion, "gate (eq. 18), mlp (EMBSR-NF) or fixed")
      ->check(CLI::IsMember({"gate", "mlp", "fixed"}))
      ->capture_default_str();
  app.add_option("--fixed-beta", a.model.fixed_beta)->capture_default_str();
  app.add_option("--lr", a.train.adam.lr)->capture_default_str();
  app.add_option("--weight-decay", a.train.adam.weight_decay, "L2 penalty on every parameter (Adam, PyTorch semantics)")
      ->capture_default_str();
  app.add_option("--batch", a.train.batch_size)->capture_default_str();
  app.add_option("--epochs", a.train.epochs)->capture_default_str();
  app.add_option("--patience", a.train.patience)->capture_default_str();
  app.add_option("--threads", a.threads, "threads (default: OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--memory-limit", a.memory_limit,
                 "refuse a model (or a --resume checkpoint) that needs more memory than this, e.g. 8G "
                 "(default: the memory available at the start)");
  app.add_option("--output", a.output, "output directory")->capture_default_str();
  app.add_option("--resume", a.resume, "continue from DIR/last.ckpt of an earlier run")->check(CLI::ExistingFile);
  app.add_flag("--no-progress", a.no_progress, "no progress bar");
  app.add_option("--loss-log", a.loss_log, "write the loss of every optimizer step to this CSV file (step,loss)");
  app.add_flag("--baselines", a.baselines, "also report the POP and S-POP baselines on test");
  CLI11_PARSE(app, argc, argv);
  embsr::ModelOptions given;
  try {
    given = model_options_from_flags(app, a, extra_options);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-train: %s\n", e.what());
    return 1;
  }
  if (a.threads > 0) setenv("OMP_NUM_THREADS", std::to_string(a.threads).c_str(), 1);
  setenv("OMP_PROC_BIND", "false", 0);
  // Rank 0 speaks for the run; the other ranks' standard output would repeat it.
  if (!comm.is_root() && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;
  // A rank that fails says so, naming itself, and stops the whole job: the other ranks are (or soon
  // will be) waiting for it in a collective, and would wait forever.
  const std::string who = comm.size() > 1 ? "embsr-train: rank " + std::to_string(comm.rank()) + " of " +
                                                std::to_string(comm.size()) + ": "
                                          : "embsr-train: ";
  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "%s%s\n", who.c_str(), message.c_str());
#ifdef EMBSR_WITH_MPI
    if (comm.size() > 1) {
      std::fprintf(stderr, "%sstopping all %d ranks\n", who.c_str(), comm.size());
      embsr::MpiCommunicator::abort_all(1);
    }
#endif
    return 1;
  };
  // Kokkos is configured through the environment only: its own argv parsing would take our
  // --threads for its deprecated --threads=N flag.
  Kokkos::ScopeGuard kokkos;
  try {
    return run(a, given, comm);
  } catch (const embsr::Error& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail("out of memory (lower --batch or --d, or free memory)");
  } catch (const std::exception& e) {
    // Kokkos reports a failed allocation as a runtime_error ("Kokkos failed to allocate ...").
    if (std::strstr(e.what(), "allocat") != nullptr) return fail(std::string("out of memory: ") + e.what());
    return fail(std::string("unexpected error: ") + e.what());
  }
}
