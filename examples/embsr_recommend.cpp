// embsr-recommend: next-item recommendations from a trained checkpoint.
//
//   embsr-recommend --model ckpt.bin [--input FILE|-] [--format jsonl|jd] [--k 20] [--exclude-seen]
//                   [--next-op NAME] [--lenient] [--memory-limit SIZE]
//
// Input, one session per line (blank lines are ignored), parsed by embsr/serve/request_parser.hpp:
//   jsonl  {"session": [{"item": "123", "operation": "Cart"}, ...]}
//          or {"items": ["123", ...], "operations": ["Cart", ...]}   (item ids may be JSON integers)
//   jd     the JD micro-behavior log format, with the loader's rules: tokens
//          "sku+behavior_type+category+time_interval+dwell_time" (five unsigned integers) separated by
//          whitespace, behavior_type 1..10 mapped to the JD operation names (embsr::jd_operation_names()).
// Output, one JSON line per input session, in input order:
//   {"items": [...], "scores": [...], "unknown_items": [...], "unknown_operations": [...]}
// Output is always valid JSON: bytes that are not UTF-8 (in ids, or in a message quoting the input)
// are written as U+FFFD.
// A bad line (malformed, a session without any known item and operation, or one the recommender
// refuses) stops the run with "INPUT:LINE: reason" on stderr and exit status 1, after the answers
// to the lines before it have been written. With --lenient the line is reported on stderr and
// answered with {"line": LINE, "error": "reason"}, so that every non-blank input line gets exactly
// one output line and the rest of the input is still answered.
// A failure to write standard output (a full disk, say) is an error naming "standard output" and
// the reason, exit status 1: answers that never reach the reader are not a success.
#include <embsr/core/memory.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/model/registry_instances.hpp>  // every registered model is compiled once, in registry_instances.cpp
#include <embsr/serve/recommender.hpp>
#include <embsr/serve/request_parser.hpp>

#include "common/standard_output.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Args {
  std::string model;
  std::string input = "-";
  std::string format = "jsonl";
  int k = 20;
  bool exclude_seen = false;
  std::string next_op;
  bool lenient = false;
  std::string memory_limit;  // "": the memory available at start
};

// Everything this tool writes is JSON that a consumer parses line by line: never let a byte that is
// not UTF-8 (a raw id, input quoted in a message) throw type_error.316 and cost the rest of the run.
std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json to_json(const embsr::Recommendation& r) {
  return nlohmann::json{{"items", r.items},
                        {"scores", r.scores},
                        {"unknown_items", r.unknown_items},
                        {"unknown_operations", r.unknown_operations}};
}

// A line that could not be answered (strict mode stops there).
struct LineFailure {
  std::size_t line;
  std::string reason;
};

// Output slots in input order (an answer to fill in, or an error object) and the sessions waiting
// for one batched call.
class Answerer {
 public:
  Answerer(const embsr::Recommender<>& rec, const embsr::RecommendOptions& options, const std::string& input_name,
           bool lenient)
      : rec_(rec), options_(options), input_name_(input_name), lenient_(lenient) {}

  void add_session(std::vector<embsr::SessionEvent> events, std::size_t line) {
    slot_of_.push_back(out_.size());
    out_.emplace_back();
    sessions_.push_back(std::move(events));
    lines_.push_back(line);
  }
  // A bad line in lenient mode: reported on stderr, answered with an error object.
  void add_error(std::size_t line, const std::string& reason) {
    std::fprintf(stderr, "embsr-recommend: %s:%zu: %s (skipped)\n", input_name_.c_str(), line, reason.c_str());
    out_.push_back(nlohmann::json{{"line", line}, {"error", reason}});
    ++skipped_;
  }
  bool full() const { return out_.size() >= embsr::Recommender<>::kChunk; }

  // Answers the waiting sessions and writes every slot, in input order. A batch the recommender
  // refuses is answered session by session, so that one bad session costs only its own line. In
  // strict mode the first session that fails stops the writing there and is returned.
  std::optional<LineFailure> flush() {
    std::optional<LineFailure> failure;
    if (!sessions_.empty()) {
      try {
        const auto recs = rec_.recommend_batch(sessions_, options_);
        for (std::size_t i = 0; i < recs.size(); ++i) out_[slot_of_[i]] = to_json(recs[i]);
        answered_ += recs.size();
      } catch (const std::exception&) {
        failure = answer_one_by_one();
      }
    }
    errno = 0;
    for (const auto& j : out_) std::cout << dump_line(j) << '\n';
    embsr::cli::check_standard_output();  // answers that never reach the reader are an error
    out_.clear();
    sessions_.clear();
    lines_.clear();
    slot_of_.clear();
    return failure;
  }

  std::size_t answered() const { return answered_; }
  std::size_t skipped() const { return skipped_; }

 private:
  std::optional<LineFailure> answer_one_by_one() {
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      try {
        out_[slot_of_[i]] = to_json(rec_.recommend(sessions_[i], options_));
        ++answered_;
      } catch (const std::exception& e) {
        if (!lenient_) {
          out_.resize(slot_of_[i]);  // strict mode has no error slots: everything before is an answer
          return LineFailure{lines_[i], e.what()};
        }
        out_[slot_of_[i]] = nlohmann::json{{"line", lines_[i]}, {"error", e.what()}};
        std::fprintf(stderr, "embsr-recommend: %s:%zu: %s (skipped)\n", input_name_.c_str(), lines_[i], e.what());
        ++skipped_;
      }
    }
    return std::nullopt;
  }

  const embsr::Recommender<>& rec_;
  const embsr::RecommendOptions& options_;
  const std::string& input_name_;
  bool lenient_;
  std::vector<nlohmann::json> out_;
  std::vector<std::vector<embsr::SessionEvent>> sessions_;
  std::vector<std::size_t> lines_;
  std::vector<std::size_t> slot_of_;  // waiting session -> index in out_
  std::size_t answered_ = 0, skipped_ = 0;
};

int run(const Args& a) {
  const embsr::Recommender<> rec(a.model, a.memory_limit.empty() ? 0 : embsr::parse_byte_size(a.memory_limit));
  if (!a.next_op.empty() && !rec.operations().contains(a.next_op)) {
    std::string known;
    for (const auto& t : rec.operations().tokens()) known += (known.empty() ? "" : ", ") + t;
    throw embsr::InvalidArgument("--next-op: unknown operation '" + a.next_op + "' (the model knows: " + known + ")");
  }
  embsr::RecommendOptions options;
  options.k = a.k;
  options.exclude_session_items = a.exclude_seen;
  options.next_operation = a.next_op;

  std::ifstream file;
  std::istream* in = &std::cin;
  const std::string input_name = a.input == "-" ? "<stdin>" : a.input;
  if (a.input != "-") {
    file = embsr::detail::open_input(a.input);  // names the file: "is a directory", strerror
    in = &file;
  }

  auto has_usable_event = [&](const std::vector<embsr::SessionEvent>& s) {
    for (const auto& e : s)
      if (rec.items().contains(e.item) && rec.operations().contains(e.operation)) return true;
    return false;
  };
  auto stop = [&](const LineFailure& f) {
    std::fprintf(stderr, "embsr-recommend: %s:%zu: %s\n", input_name.c_str(), f.line, f.reason.c_str());
    return 1;
  };

  Answerer answerer(rec, options, input_name, a.lenient);
  std::string line;
  std::size_t line_no = 0;
  errno = 0;
  while (std::getline(*in, line)) {
    ++line_no;
    if (line.find_first_not_of(embsr::detail::kJdSpaces) == std::string::npos) continue;
    try {
      auto events = a.format == "jd" ? embsr::parse_jd_request(line) : embsr::parse_jsonl_request(line);
      if (!has_usable_event(events))
        throw embsr::RequestError("empty session: none of the " + std::to_string(events.size()) +
                                  " events has a known item and operation");
      answerer.add_session(std::move(events), line_no);
    } catch (const embsr::RequestError& e) {
      if (!a.lenient) {
        // Everything before the bad line is answered first (unless an earlier line fails there).
        if (const auto earlier = answerer.flush()) return stop(*earlier);
        return stop(LineFailure{line_no, e.what()});
      }
      answerer.add_error(line_no, e.what());
    }
    if (answerer.full())
      if (const auto failure = answerer.flush()) return stop(*failure);
  }
  if (in->bad()) {
    const int err = errno;
    throw embsr::DataError(input_name, line_no + 1,
                           std::string("read error: ") + (err != 0 ? std::strerror(err) : "I/O failure"));
  }
  if (const auto failure = answerer.flush()) return stop(*failure);
  if (answerer.skipped() > 0)
    std::fprintf(stderr, "embsr-recommend: %zu sessions answered, %zu lines skipped\n", answerer.answered(),
                 answerer.skipped());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"embsr-recommend: next-item recommendations for sessions from a trained checkpoint of any model of the library (its name is in the file)"};
  Args a;
  app.add_option("--model", a.model, "checkpoint file (written by training)")->required()->check(CLI::ExistingFile);
  app.add_option("--memory-limit", a.memory_limit,
                 "refuse a checkpoint whose model needs more memory than this, e.g. 2G (default: the memory "
                 "available at start)");
  app.add_option("--input", a.input, "sessions, one per line; '-' reads standard input")->capture_default_str();
  app.add_option("--format", a.format, "input format: jsonl or jd (JD micro-behavior log lines)")
      ->check(CLI::IsMember({"jsonl", "jd"}))
      ->capture_default_str();
  app.add_option("--k", a.k, "number of items to recommend per session")->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_flag("--exclude-seen", a.exclude_seen, "never recommend an item already in the session");
  app.add_option("--next-op", a.next_op,
                 "operation the next micro-behavior will have (models trained with the given next operation); "
                 "default: the session's last operation");
  app.add_flag("--lenient", a.lenient, "answer malformed lines with an error object instead of stopping");
  CLI11_PARSE(app, argc, argv);
  setenv("OMP_PROC_BIND", "false", 0);  // Kokkos' OpenMP backend warns on stdout otherwise

  Kokkos::ScopeGuard kokkos;
  try {
    return run(a);
  } catch (const embsr::Error& e) {
    std::fprintf(stderr, "embsr-recommend: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "embsr-recommend: out of memory (try --memory-limit to refuse such a model up front)\n");
    return 1;
  } catch (const std::exception& e) {
    // Kokkos reports a failed allocation as a runtime_error ("Kokkos failed to allocate ...").
    if (std::strstr(e.what(), "allocat") != nullptr) {
      std::fprintf(stderr, "embsr-recommend: out of memory: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "embsr-recommend: unexpected error: %s\n", e.what());
    return 1;
  }
}
