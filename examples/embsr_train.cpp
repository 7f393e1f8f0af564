// embsr-train: train EMBSR on a session log, report the paper's metrics, save the model.
//
//   embsr-train --format jd FILE... [--min-support 5 --max-length 40] [--epochs 50 --batch 512 ...]
//               [--output DIR]
//
// Writes into DIR: best.ckpt (the best validation epoch's model, for embsr-recommend), last.ckpt
// (model + optimizer + loop state, for --resume), metrics.json (configuration, per-epoch metrics and
// timings, test metrics), curve.csv (the training curve) and curve.png (loss and validation H@20 /
// M@20 per epoch, drawn with gnuplot when it is installed).
#include <embsr/core/memory.hpp>
#include <embsr/embsr.hpp>
#include <embsr/io/atomic_file.hpp>
#include <embsr/train/baselines.hpp>
#include <embsr/train/trainer.hpp>

#include "common/dataset_options.hpp"
#include "common/standard_output.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <sstream>
#include <string>
#include <system_error>

namespace {

struct Args {
  embsr::cli::DatasetOptions data;
  embsr::Config model;
  embsr::TrainOptions train;
  std::string next_op = "given", fusion = "gate", output = "embsr-run", resume;
  bool no_attention = false, no_gnn = false, no_run_gru = false, no_relations = false, no_progress = false;
  bool baselines = false;
  int threads = 0;
  std::string memory_limit;  // "" or "0": the memory available when the run starts
};


nlohmann::json metrics_json(const embsr::RankingMetrics& m) {
  nlohmann::json j = {{"sessions", m.sessions}};
  for (int k : embsr::kMetricKs) {
    j["H@" + std::to_string(k)] = m.hit(k);
    j["M@" + std::to_string(k)] = m.mrr(k);
    j["NDCG@" + std::to_string(k)] = m.ndcg_at(k);
  }
  return j;
}

nlohmann::json config_json(const Args& a) {
  const auto& c = a.model;
  return {{"files", a.data.files},
          {"format", a.data.format},
          {"min_item_support", a.data.pre.min_item_support},
          {"max_length", a.data.pre.max_length},
          {"train_fraction", a.data.pre.train_fraction},
          {"valid_fraction", a.data.pre.valid_fraction},
          {"d", c.d},
          {"gnn_steps", c.gnn_steps},
          {"dropout", c.dropout},
          {"w_k", c.w_k},
          {"seed", c.seed},
          {"next_op", a.next_op},
          {"use_attention", c.use_attention},
          {"use_gnn", c.use_gnn},
          {"use_run_gru", c.use_run_gru},
          {"use_relations", c.use_relations},
          {"fusion", a.fusion},
          {"fixed_beta", c.fixed_beta},
          {"lr", a.train.adam.lr},
          {"batch_size", a.train.batch_size},
          {"epochs", a.train.epochs},
          {"patience", a.train.patience},
          {"threads", Kokkos::DefaultExecutionSpace().concurrency()},
          {"backend", Kokkos::DefaultExecutionSpace::name()}};
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

int run(Args& a) {
  namespace fs = std::filesystem;
  auto& c = a.model;
  c.next_op = a.next_op == "learned" ? embsr::NextOpMode::Learned : embsr::NextOpMode::Given;
  c.fusion = a.fusion == "mlp" ? embsr::FusionMode::Mlp : a.fusion == "fixed" ? embsr::FusionMode::Fixed : embsr::FusionMode::Gate;
  c.use_attention = !a.no_attention;
  c.use_gnn = !a.no_gnn;
  c.use_run_gru = !a.no_run_gru;
  c.use_relations = !a.no_relations;
  a.train.progress = !a.no_progress;
  a.train.shuffle_seed = c.seed;
  a.data.pre.validate();
  if (!a.memory_limit.empty()) a.train.memory_limit = embsr::parse_byte_size(a.memory_limit);
  // The output directory must be writable before the data is even read, not after an epoch.
  std::error_code ec;
  fs::create_directories(a.output, ec);
  if (ec) throw embsr::Error("cannot create output directory '" + a.output + "': " + ec.message());
  embsr::check_directory_writable(a.output);

  embsr::LoadReport report;
  const embsr::SessionDataset raw = a.data.load(report);
  const embsr::PreparedData data = embsr::preprocess(raw, a.data.pre);
  std::printf("%s", report.summary().c_str());
  std::printf("data: %zu train / %zu validation / %zu test sessions, %d items, %d operations\n", data.train.size(),
              data.valid.size(), data.test.size(), data.item_vocab.size(), data.op_vocab.size());
  c.num_items = data.item_vocab.size();
  c.num_ops = data.op_vocab.size();
  c.max_length = a.data.pre.max_length;

  a.train.checkpoint_dir = a.output;
  using Exec = Kokkos::DefaultExecutionSpace;
  // Refuse a model that cannot fit before building it (a mistyped --d 100000 would otherwise end in
  // an allocation failure, or the kernel's OOM killer, minutes later).
  const std::uint64_t need = embsr::model_memory_bytes(c, std::max(a.train.batch_size, a.train.eval_batch_size), true);
  const std::uint64_t limit = a.train.memory_limit != 0 ? a.train.memory_limit : embsr::available_memory_bytes();
  if (need > limit)
    throw embsr::InvalidArgument("the model (" + std::to_string(c.num_items) + " items, d " + std::to_string(c.d) +
                                 ", gnn_steps " + std::to_string(c.gnn_steps) + ", batch " +
                                 std::to_string(a.train.batch_size) + ") needs about " + embsr::format_bytes(need) +
                                 " to train, more than the memory limit of " + embsr::format_bytes(limit) +
                                 " (--memory-limit)");
  embsr::EMBSR<Exec, float> model(c);
  std::printf("model: EMBSR, %zu parameters, next operation %s, %s backend with %d threads\n", model.num_parameters(),
              a.next_op.c_str(), Exec::name(), Exec().concurrency());
  embsr::Trainer<Exec> trainer(model, data, a.train);
  if (!a.resume.empty()) {
    trainer.resume(a.resume);
    std::printf("resumed from %s after epoch %llu\n", a.resume.c_str(),
                static_cast<unsigned long long>(trainer.state().epoch));
  }
  // The curve is rewritten whole (atomically) after every epoch: always readable, and a write
  // failure stops the run at the epoch it happened in.
  std::ostringstream csv;
  csv << "epoch,train_loss,valid_H@20,valid_M@20,train_seconds,eval_seconds\n";
  trainer.on_epoch = [&](const embsr::EpochRecord& r) {
    std::printf("epoch %3d  loss %.4f  valid H@20 %6.2f  M@20 %6.2f  (%.1f s + %.1f s)%s\n", r.epoch, r.train_loss,
                100 * r.valid.hit(20), 100 * r.valid.mrr(20), r.train_seconds, r.eval_seconds,
                r.improved ? "  *best*" : "");
    embsr::cli::check_standard_output();
    csv << r.epoch << ',' << r.train_loss << ',' << 100 * r.valid.hit(20) << ',' << 100 * r.valid.mrr(20) << ','
        << r.train_seconds << ',' << r.eval_seconds << '\n';
    embsr::write_file_atomically(a.output + "/curve.csv", csv.str());
  };
  embsr::write_file_atomically(a.output + "/curve.csv", csv.str());  // this run's curve (a resumed run's too)
  const embsr::TrainResult result = trainer.run();

  std::printf("\nbest epoch %d of %zu%s; test metrics (%zu sessions, %%):\n%s", result.best_epoch, result.history.size(),
              result.stopped_early ? " (stopped early)" : "", result.test.sessions, result.test.table().c_str());
  nlohmann::json j = {{"config", config_json(a)},
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
                           {"valid", metrics_json(r.valid)}});
  const auto split = embsr::split_repeat_explore(data.test, result.test_ranks);
  j["test_repeat"] = metrics_json(split.repeat);
  j["test_explore"] = metrics_json(split.explore);
  if (a.baselines) {
    const embsr::PopularityBaseline pop(data.train, data.item_vocab.size());
    const embsr::SessionPopularityBaseline spop(data.train, data.item_vocab.size());
    const auto pop_r = pop.ranks(data.test), spop_r = spop.ranks(data.test);
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
    std::printf("EMBSR   repeat %6.2f / %6.2f   explore %6.2f / %6.2f\n", 100 * split.repeat.hit(20),
                100 * split.repeat.mrr(20), 100 * split.explore.hit(20), 100 * split.explore.mrr(20));
    std::printf("S-POP   repeat %6.2f / %6.2f   explore %6.2f / %6.2f\n", 100 * spop_split.repeat.hit(20),
                100 * spop_split.repeat.mrr(20), 100 * spop_split.explore.hit(20), 100 * spop_split.explore.mrr(20));
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
  CLI::App app{"embsr-train: train EMBSR (micro-behavior session-based recommendation) and report H@K / M@K"};
  Args a;
  a.data.pre.min_item_support = 5;
  a.data.pre.max_length = 40;
  a.data.add_to(&app);
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
  app.add_flag("--baselines", a.baselines, "also report the POP and S-POP baselines on test");
  CLI11_PARSE(app, argc, argv);
  if (a.threads > 0) setenv("OMP_NUM_THREADS", std::to_string(a.threads).c_str(), 1);
  setenv("OMP_PROC_BIND", "false", 0);
  // Kokkos is configured through the environment only: its own argv parsing would take our
  // --threads for its deprecated --threads=N flag.
  Kokkos::ScopeGuard kokkos;
  try {
    return run(a);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-train: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "embsr-train: out of memory (lower --batch or --d, or free memory)\n");
    return 1;
  } catch (const std::exception& e) {
    // Kokkos reports a failed allocation as a runtime_error ("Kokkos failed to allocate ...").
    if (std::strstr(e.what(), "allocat") != nullptr) {
      std::fprintf(stderr, "embsr-train: out of memory: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "embsr-train: unexpected error: %s\n", e.what());
    return 1;
  }
}
