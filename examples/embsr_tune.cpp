// embsr-tune: seeded random search over a registered model's hyper-parameters, on the validation
// split; the best configuration is then trained again from scratch and evaluated once on test.
//
//   embsr-tune --format jd FILE... [--model NAME] [--trials 20 --seed 1 --metric h20+m20]
//              [--epochs 10] [--option KEY=VALUE ...] [--lr X] [--weight-decay X] [--out DIR]
//              [--checkpoint FILE]
//   embsr-tune --list-spaces
//
// The data flags and preprocessing are embsr-train's (examples/common/). What is searched
// (train/tuner.hpp): every option of the model whose OptionSpec::search is tuned (the model's spec
// declares it), and for a model that learns by gradients the training hyper-parameters lr and
// weight_decay (training_search_dimensions()); whatever the user fixes (--option, --lr,
// --weight-decay) is never sampled. Trial t's values depend only on (--seed, t, the model's spec).
// A model with nothing to search (pop, s-pop) runs one trial.
//
// Each trial trains from scratch on the training split for --epochs epochs (a counting model is fit
// once) and keeps its best validation epoch, as embsr-train does; its score is the --metric on the
// validation split. The test split is not looked at until the search is over: the best trial's
// configuration is trained again from scratch with the same budget and evaluated once on test.
//
// Writes into DIR: trials.csv and trials.json (one row per trial: index, every sampled value,
// status, validation metrics, objective, seconds; rewritten after every trial) and best.json (the
// best configuration, its validation and test metrics, the test's repeat/explore split).
#include <embsr/embsr.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp
#include <embsr/io/atomic_file.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/train/evaluate.hpp>
#include <embsr/train/trainer.hpp>
#include <embsr/train/tuner.hpp>

#include "common/dataset_options.hpp"
#include "common/model_setup.hpp"
#include "common/standard_output.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <new>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

using Exec = Kokkos::DefaultExecutionSpace;

struct Args {
  embsr::cli::DatasetOptions data;
  std::string model_name = "embsr";
  int trials = 20;
  std::uint64_t seed = 1;
  std::string metric = "h20+m20";
  int epochs = 10;
  int patience = 10;
  std::size_t batch = 512;
  double lr = 0.001, weight_decay = 0.0;
  std::vector<std::string> options;
  std::string out = "embsr-tune", checkpoint, memory_limit;
  int threads = 0;
  bool progress = false;
};

// What the user fixed: model options, and the training flags given.
struct Fixed {
  embsr::ModelOptions model;
  bool lr = false, weight_decay = false;
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& item : model.items()) k.push_back(item.first);
    if (lr) k.push_back("lr");
    if (weight_decay) k.push_back("weight_decay");
    return k;
  }
};

const char* kind_name(embsr::OptionKind kind) {
  switch (kind) {
    case embsr::OptionKind::Integer: return "integer";
    case embsr::OptionKind::Number: return "number";
    case embsr::OptionKind::Boolean: return "boolean";
    default: return "choice";
  }
}

// "16 .. 64 (log-uniform)", "{given, learned}", "{false, true}".
std::string describe_space(const embsr::SearchDimension& d) {
  if (d.kind == embsr::OptionKind::Boolean) return "{false, true}";
  if (d.kind == embsr::OptionKind::Choice) {
    std::string s;
    for (const auto& c : d.choices) s += (s.empty() ? "" : ", ") + c;
    return "{" + s + "}";
  }
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%g .. %g (%s)", d.space.low, d.space.high,
                d.space.log_scale ? "log-uniform" : "uniform");
  return buf;
}

// The option's text as JSON: a number, a boolean or a string, by the option's kind.
nlohmann::json typed(embsr::OptionKind kind, const std::string& text) {
  if (kind == embsr::OptionKind::Boolean) return text == "true" || text == "1";
  if (kind == embsr::OptionKind::Choice) return text;
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return text;
  }
}

nlohmann::json options_json(const embsr::ModelSpec& spec, const embsr::ModelOptions& options) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : options.items()) {
    const auto* o = spec.option(key);
    j[key] = typed(o != nullptr ? o->kind : embsr::OptionKind::Number, value);
  }
  return j;
}

// One line of a search space: key, kind, range, help.
void print_dimension(const embsr::SearchDimension& d) {
  std::printf("  %-17s %-8s %-32s %s%s\n", d.key.c_str(), kind_name(d.kind), describe_space(d).c_str(), d.help.c_str(),
              d.training ? " [training]" : "");
}

int list_spaces() {
  for (const auto& spec : embsr::model_catalog()) {
    const auto dims = embsr::search_dimensions(spec);
    std::printf("%s (%s)%s\n", spec.info.name.c_str(), spec.info.learns_by_gradients ? "gradients" : "counting",
                dims.empty() ? ": nothing to tune (one trial)" : "");
    for (const auto& d : dims) print_dimension(d);
  }
  embsr::cli::check_standard_output();
  return 0;
}

// The validation objective of `m` (a sum of fractions in [0, 1] per term).
double objective_of(const std::vector<embsr::ObjectiveTerm>& terms, const embsr::RankingMetrics& m) {
  double sum = 0;
  for (const auto& t : terms) sum += t.metric == 'h' ? m.hit(t.k) : t.metric == 'm' ? m.mrr(t.k) : m.ndcg_at(t.k);
  return sum;
}

// The user's fixed options and flags, checked against the model before any data is read.
Fixed fixed_from_flags(const CLI::App& app, const Args& a) {
  const embsr::ModelSpec& spec = embsr::find_model_spec(a.model_name);  // unknown model: the known ones
  Fixed f;
  for (const std::string& kv : a.options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw embsr::InvalidArgument("--option '" + kv + "': expected KEY=VALUE");
    const std::string key = kv.substr(0, eq);
    if (spec.option(key) == nullptr && (key == "lr" || key == "weight_decay"))
      throw embsr::InvalidArgument("--option " + key + ": a training hyper-parameter, fix it with --" +
                                   (key == "lr" ? "lr" : "weight-decay"));
    const auto* option = spec.option(key);
    if (option != nullptr && option->from_data)
      throw embsr::InvalidArgument("--option " + key + ": set from the data, not on the command line");
    f.model.set(key, kv.substr(eq + 1));
  }
  embsr::detail::check_known_options(spec, f.model);
  f.lr = app.count("--lr") > 0;
  f.weight_decay = app.count("--weight-decay") > 0;
  if (!spec.info.learns_by_gradients)
    for (const char* flag : {"--lr", "--weight-decay", "--batch", "--patience"})
      if (app.count(flag) > 0)
        throw embsr::InvalidArgument("model '" + a.model_name + "' learns by counting, not by gradients: " + flag +
                                     " does not apply to it");
  if (a.trials < 1) throw embsr::InvalidArgument("--trials must be >= 1, got " + std::to_string(a.trials));
  if (a.epochs < 1) throw embsr::InvalidArgument("--epochs must be >= 1, got " + std::to_string(a.epochs));
  if (a.patience < 1) throw embsr::InvalidArgument("--patience must be >= 1, got " + std::to_string(a.patience));
  if (a.batch < 1) throw embsr::InvalidArgument("--batch must be >= 1");
  embsr::AdamOptions adam;
  adam.lr = a.lr;
  adam.weight_decay = a.weight_decay;
  adam.validate();  // a fixed --lr or --weight-decay out of range
  (void)embsr::parse_objective(a.metric);
  return f;
}

struct TrialResult {
  int trial = 0;
  embsr::ModelOptions values;  // the sampled values (dimension order)
  std::string status = "ok";   // ok, diverged, too-large
  std::string message;
  embsr::RankingMetrics valid;
  double objective = std::numeric_limits<double>::quiet_NaN();
  int best_epoch = 0;
  double seconds = 0;
};

// One configuration: the model options (data sizes included) and the training options.
struct Configuration {
  embsr::ModelOptions options;
  embsr::TrainOptions train;
};

Configuration configure(const Args& a, const Fixed& fixed, const std::vector<embsr::SearchDimension>& dims,
                        const embsr::ModelOptions& values, const embsr::PreparedData& data) {
  Configuration c;
  embsr::ModelOptions given = fixed.model;
  for (const auto& d : dims)
    if (!d.training) given.set(d.key, *values.find(d.key));
  c.options = embsr::cli::options_for_data(a.model_name, given, data, a.data.pre);
  c.train.epochs = a.epochs;
  c.train.patience = a.patience;
  c.train.batch_size = a.batch;
  c.train.progress = a.progress;
  c.train.adam.lr = a.lr;
  c.train.adam.weight_decay = a.weight_decay;
  for (const auto& d : dims)
    if (d.training && d.key == "lr") c.train.adam.lr = values.get_double("lr", a.lr);
    else if (d.training && d.key == "weight_decay") c.train.adam.weight_decay = values.get_double("weight_decay", 0);
  if (!a.memory_limit.empty()) c.train.memory_limit = embsr::parse_byte_size(a.memory_limit);
  // One seed for the model and the shuffling, as embsr-train.
  c.train.shuffle_seed = c.options.get_uint("seed", 1);
  c.train.validate();
  return c;
}

std::string csv_metric(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", x);
  return buf;
}

constexpr int kReportKs[] = {5, 10, 20};

void write_trials(const Args& a, const embsr::ModelSpec& spec, const std::vector<embsr::SearchDimension>& dims,
                  const Fixed& fixed, const std::vector<embsr::ObjectiveTerm>& terms, int planned,
                  const std::vector<TrialResult>& results) {
  std::ostringstream csv;
  csv << "trial";
  for (const auto& d : dims) csv << ',' << d.key;
  csv << ",status";
  for (const char* m : {"H", "M"})
    for (int k : kReportKs) csv << ",valid_" << m << '@' << k;
  csv << ",objective,seconds\n";
  for (const auto& r : results) {
    csv << r.trial;
    for (const auto& d : dims) csv << ',' << *r.values.find(d.key);
    csv << ',' << r.status;
    const bool ok = r.status == "ok";
    for (int k : kReportKs) csv << ',' << (ok ? csv_metric(r.valid.hit(k)) : "");
    for (int k : kReportKs) csv << ',' << (ok ? csv_metric(r.valid.mrr(k)) : "");
    csv << ',' << (ok ? csv_metric(r.objective) : "");
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%.3f", r.seconds);
    csv << ',' << secs << '\n';
  }
  embsr::write_file_atomically(a.out + "/trials.csv", csv.str());

  nlohmann::json space = nlohmann::json::array();
  for (const auto& d : dims) {
    nlohmann::json s = {{"key", d.key}, {"kind", kind_name(d.kind)}, {"training", d.training}, {"help", d.help}};
    if (d.kind == embsr::OptionKind::Integer || d.kind == embsr::OptionKind::Number) {
      s["low"] = d.space.low;
      s["high"] = d.space.high;
      s["log_scale"] = d.space.log_scale;
    } else if (d.kind == embsr::OptionKind::Choice) {
      s["choices"] = d.choices;
    }
    space.push_back(s);
  }
  nlohmann::json fixed_j = options_json(spec, fixed.model);
  if (fixed.lr) fixed_j["lr"] = a.lr;
  if (fixed.weight_decay) fixed_j["weight_decay"] = a.weight_decay;
  nlohmann::json j = {{"model", a.model_name},
                      {"seed", a.seed},
                      {"metric", a.metric},
                      {"objective", embsr::objective_name(terms)},
                      {"trials_requested", a.trials},
                      {"trials_planned", planned},
                      {"search_space", space},
                      {"fixed", fixed_j}};
  if (spec.info.learns_by_gradients)
    j["training"] = {{"epochs", a.epochs}, {"batch_size", a.batch}, {"patience", a.patience},
                     {"lr", fixed.lr ? nlohmann::json(a.lr) : nlohmann::json("searched")},
                     {"weight_decay", fixed.weight_decay ? nlohmann::json(a.weight_decay) : nlohmann::json("searched")}};
  else
    j["training"] = {{"fit", "once per trial (learns by counting)"}};
  j["trials"] = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json values = nlohmann::json::object();
    for (const auto& d : dims) values[d.key] = typed(d.kind, *r.values.find(d.key));
    nlohmann::json t = {{"trial", r.trial}, {"values", values}, {"status", r.status}, {"seconds", r.seconds}};
    if (r.status == "ok") {
      t["valid"] = embsr::cli::metrics_json(r.valid);
      t["objective"] = r.objective;
      t["best_epoch"] = r.best_epoch;
    } else {
      t["message"] = r.message;
    }
    j["trials"].push_back(t);
  }
  embsr::write_file_atomically(a.out + "/trials.json", j.dump(2) + "\n");
}

std::string values_line(const std::vector<embsr::SearchDimension>& dims, const embsr::ModelOptions& values) {
  std::string s;
  for (const auto& d : dims) s += (s.empty() ? "" : " ") + d.key + "=" + *values.find(d.key);
  return s.empty() ? "(defaults)" : s;
}

int run(Args& a, const Fixed& fixed) {
  namespace fs = std::filesystem;
  const embsr::ModelSpec& spec = embsr::find_model_spec(a.model_name);
  const auto terms = embsr::parse_objective(a.metric);
  const auto dims = embsr::search_dimensions(spec, fixed.keys());
  a.data.pre.validate();
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) throw embsr::Error("cannot create output directory '" + a.out + "': " + ec.message());
  embsr::check_directory_writable(a.out);
  if (!a.checkpoint.empty()) {  // found out now, not after the search
    const fs::path parent = fs::path(a.checkpoint).parent_path();
    embsr::check_directory_writable(parent.empty() ? std::string(".") : parent.string());
  }

  embsr::PreparedData data = a.data.load_prepared();
  // The fixed options, checked against the data before the first trial.
  (void)embsr::cli::options_for_data(a.model_name, fixed.model, data, a.data.pre);
  const int planned = dims.empty() ? 1 : a.trials;
  const bool gradients = spec.info.learns_by_gradients;
  std::printf("search: %s, %d trial%s, seed %llu, objective %s (%%) on the validation split (%zu sessions)\n",
              a.model_name.c_str(), planned, planned == 1 ? "" : "s", static_cast<unsigned long long>(a.seed),
              embsr::objective_name(terms).c_str(), data.valid.size());
  if (dims.empty())
    std::printf("  %s has nothing to tune%s: one trial instead of %d\n", a.model_name.c_str(),
                fixed.model.empty() ? "" : " (or everything tunable is fixed)", a.trials);
  for (const auto& d : dims) print_dimension(d);
  for (const auto& [key, value] : fixed.model.items()) std::printf("  %-17s fixed    %s\n", key.c_str(), value.c_str());
  if (fixed.lr) std::printf("  %-17s fixed    %g [training]\n", "lr", a.lr);
  if (fixed.weight_decay) std::printf("  %-17s fixed    %g [training]\n", "weight_decay", a.weight_decay);
  if (gradients)
    std::printf("budget: %d epoch%s per trial (best validation epoch kept, patience %d), batch %zu\n", a.epochs,
                a.epochs == 1 ? "" : "s", a.patience, a.batch);
  else
    std::printf("budget: %s learns by counting: fit once per trial (--epochs does not apply)\n", a.model_name.c_str());
  embsr::cli::check_standard_output();

  // The search never sees the test split: it is set aside until the best configuration is known.
  embsr::ExampleSet test = std::move(data.test);
  data.test = embsr::ExampleSet{};

  std::vector<TrialResult> results;
  int best = -1;  // index into results
  for (int t = 1; t <= planned; ++t) {
    TrialResult r;
    r.trial = t;
    r.values = embsr::sample_trial(dims, a.seed, static_cast<std::uint64_t>(t));
    const auto t0 = std::chrono::steady_clock::now();
    const Configuration c = configure(a, fixed, dims, r.values, data);
    const std::string too_large = embsr::cli::model_memory_problem(
        a.model_name, c.options, c.train.batch_size, c.train.eval_batch_size, c.train.memory_limit);
    if (!too_large.empty()) {
      r.status = "too-large";
      r.message = too_large;
    } else {
      try {
        const auto model = embsr::make_model<Exec>(a.model_name, c.options);
        embsr::Trainer<Exec> trainer(*model, data, c.train);
        const embsr::TrainResult tr = trainer.run();
        r.valid = tr.best_valid;
        r.best_epoch = tr.best_epoch;
        r.objective = objective_of(terms, r.valid);
      } catch (const embsr::TrainingDiverged& e) {  // a learning rate too high for this configuration
        r.status = "diverged";
        r.message = e.what();
      }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    results.push_back(r);
    if (r.status == "ok" && (best < 0 || r.objective > results[static_cast<std::size_t>(best)].objective))
      best = static_cast<int>(results.size()) - 1;
    char score[64];
    if (r.status == "ok") std::snprintf(score, sizeof(score), "%.2f", 100 * r.objective);
    else std::snprintf(score, sizeof(score), "%s", r.status.c_str());
    char best_text[64] = "none yet";
    if (best >= 0)
      std::snprintf(best_text, sizeof(best_text), "%.2f (trial %d)", 100 * results[static_cast<std::size_t>(best)].objective,
                    results[static_cast<std::size_t>(best)].trial);
    std::printf("trial %d/%d  %s  valid %s %s  best %s  %.1f s\n", t, planned, values_line(dims, r.values).c_str(),
                a.metric.c_str(), score, best_text, r.seconds);
    if (r.status != "ok") std::printf("  %s\n", r.message.c_str());
    embsr::cli::check_standard_output();
    write_trials(a, spec, dims, fixed, terms, planned, results);
  }
  if (best < 0) throw embsr::Error("no trial finished (every one diverged or did not fit): see " + a.out + "/trials.csv");
  const TrialResult& winner = results[static_cast<std::size_t>(best)];

  // The best configuration, trained again from scratch with the same budget, evaluated once on test.
  data.test = std::move(test);
  std::printf("\nbest: trial %d, %s, valid %s %.2f; training it again from scratch for the test split\n", winner.trial,
              values_line(dims, winner.values).c_str(), a.metric.c_str(), 100 * winner.objective);
  const Configuration c = configure(a, fixed, dims, winner.values, data);
  embsr::cli::check_model_fits(a.model_name, c.options, c.train.batch_size, c.train.eval_batch_size, c.train.memory_limit);
  const auto model = embsr::make_model<Exec>(a.model_name, c.options);
  embsr::Trainer<Exec> trainer(*model, data, c.train);
  const embsr::TrainResult final_run = trainer.run();
  const auto split = embsr::split_repeat_explore(data.test, final_run.test_ranks);
  std::printf("rerun: valid %s %.2f (best epoch %d); test metrics (%zu sessions, %%):\n%s", a.metric.c_str(),
              100 * objective_of(terms, final_run.best_valid), final_run.best_epoch, final_run.test.sessions,
              final_run.test.table().c_str());
  std::printf("test by target: repeat = already in the session, explore = new (%%)\n");
  auto print_split = [](const char* label, const embsr::RankingMetrics& m) {
    std::printf("  %-7s (%5zu)", label, m.sessions);
    for (int k : kReportKs) std::printf("  H@%-2d %6.2f", k, 100 * m.hit(k));
    for (int k : kReportKs) std::printf("  M@%-2d %6.2f", k, 100 * m.mrr(k));
    std::printf("\n");
  };
  print_split("repeat", split.repeat);
  print_split("explore", split.explore);

  nlohmann::json values = nlohmann::json::object();
  for (const auto& d : dims) values[d.key] = typed(d.kind, *winner.values.find(d.key));
  nlohmann::json j = {{"model", a.model_name},
                      {"trial", winner.trial},
                      {"seed", a.seed},
                      {"metric", a.metric},
                      {"values", values},
                      {"options", options_json(spec, c.options)},
                      {"objective", winner.objective},
                      {"valid", embsr::cli::metrics_json(winner.valid)},
                      {"rerun_valid", embsr::cli::metrics_json(final_run.best_valid)},
                      {"rerun_objective", objective_of(terms, final_run.best_valid)},
                      {"rerun_best_epoch", final_run.best_epoch},
                      {"test", embsr::cli::metrics_json(final_run.test)},
                      {"test_repeat", embsr::cli::metrics_json(split.repeat)},
                      {"test_explore", embsr::cli::metrics_json(split.explore)}};
  if (gradients)
    j["training"] = {{"lr", c.train.adam.lr},       {"weight_decay", c.train.adam.weight_decay},
                     {"epochs", c.train.epochs},    {"batch_size", c.train.batch_size},
                     {"patience", c.train.patience}};
  if (!a.checkpoint.empty()) {
    embsr::TrainingState state = trainer.state();
    state.best_checksum = 0;
    embsr::save_checkpoint(a.checkpoint,
                           embsr::make_checkpoint<Exec>(*model, data.item_vocab, data.op_vocab, nullptr, state));
    j["checkpoint"] = a.checkpoint;
  }
  embsr::write_file_atomically(a.out + "/best.json", j.dump(2) + "\n");
  std::printf("\nwrote %s/{trials.csv,trials.json,best.json}\n", a.out.c_str());
  if (!a.checkpoint.empty())
    std::printf("wrote %s; recommend with: embsr-recommend --model %s --input sessions.jsonl\n", a.checkpoint.c_str(),
                a.checkpoint.c_str());
  embsr::cli::check_standard_output();
  return 0;
}

std::string footer() {
  std::string s =
      "What is searched: every option of the model with a declared search space (embsr-tune --list-spaces), and for "
      "a model that learns by gradients these training hyper-parameters:\n";
  for (const auto& d : embsr::training_search_dimensions())
    s += "  " + d.key + "  " + describe_space(d) + "  " + d.help + "\n";
  s += "Options fixed with --option KEY=VALUE, --lr or --weight-decay are never sampled. Trial t's values depend only "
       "on (--seed, t, the model's spec): the same seed draws the same trials. A model with nothing to search "
       "(pop, s-pop) runs one trial.\n"
       "--metric: terms hK (hit rate H@K), mK (MRR M@K) or nK (NDCG@K), K in 1, 3, 5, 10, 20, joined by '+' and "
       "summed; e.g. h20+m20 (the default), h20, m20, h10, m10, h5, m5, h10+m10.\n"
       "Each trial trains from scratch for --epochs epochs on the training split (a counting model is fit once) "
       "and keeps its best validation epoch; the best trial's configuration is then trained again from scratch "
       "and evaluated once on the test split (H@K, M@K, and the repeat/explore split).\n"
       "Writes DIR/trials.csv, DIR/trials.json (one row per trial) and DIR/best.json.";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"embsr-tune: seeded random search of a model's hyper-parameters on the validation split"};
  Args a;
  // --list-spaces needs no data files (which are otherwise required).
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--list-spaces") return list_spaces();
  a.data.use_training_defaults();
  a.data.add_to(&app);
  app.add_option("--model", a.model_name, "the model to tune (embsr-train --list-models)")->capture_default_str();
  app.add_option("--trials", a.trials, "configurations to try")->capture_default_str();
  app.add_option("--seed", a.seed, "seed of the search (the model's own seed: --option seed=N)")->capture_default_str();
  app.add_option("--metric", a.metric, "validation objective, maximised (see below)")->capture_default_str();
  app.add_option("--epochs", a.epochs, "training budget of each trial (models that learn by gradients)")
      ->capture_default_str();
  app.add_option("--patience", a.patience, "epochs without validation gain before a trial stops")->capture_default_str();
  app.add_option("--batch", a.batch, "training batch size")->capture_default_str();
  app.add_option("--lr", a.lr, "fix the learning rate (otherwise searched)");
  app.add_option("--weight-decay", a.weight_decay, "fix the L2 penalty (otherwise searched)");
  app.add_option("--option", a.options, "fix a model option as KEY=VALUE: not tuned (repeatable)");
  app.add_flag("--list-spaces", "list every model's search space and exit");
  app.add_option("--out", a.out, "output directory")->capture_default_str();
  app.add_option("--checkpoint", a.checkpoint, "also save the best configuration's model here (for embsr-recommend)");
  app.add_option("--threads", a.threads, "threads (default: OMP_NUM_THREADS or all cores)")->check(CLI::Range(1, 4096));
  app.add_option("--memory-limit", a.memory_limit,
                 "skip a configuration that needs more memory than this, e.g. 8G (default: the memory available)");
  app.add_flag("--progress", a.progress, "a progress bar for every epoch of every trial");
  app.footer(footer());
  CLI11_PARSE(app, argc, argv);
  Fixed fixed;
  try {
    fixed = fixed_from_flags(app, a);
    if (!a.memory_limit.empty()) (void)embsr::parse_byte_size(a.memory_limit);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-tune: %s\n", e.what());
    return 1;
  }
  if (a.threads > 0) setenv("OMP_NUM_THREADS", std::to_string(a.threads).c_str(), 1);
  setenv("OMP_PROC_BIND", "false", 0);
  // Kokkos is configured through the environment only (as embsr-train).
  Kokkos::ScopeGuard kokkos;
  try {
    return run(a, fixed);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-tune: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "embsr-tune: out of memory (lower --batch, or fix a smaller --option d=...)\n");
    return 1;
  } catch (const std::exception& e) {
    if (std::strstr(e.what(), "allocat") != nullptr) {
      std::fprintf(stderr, "embsr-tune: out of memory: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "embsr-tune: unexpected error: %s\n", e.what());
    return 1;
  }
}
