// Synthetic logs: what fit_log_shape measures (on hand-made sessions, against counts worked out by
// hand), that the built-in shape is the fit of the shipped JD sample, that generation is a pure
// function of the seed, that a generated log refits to the shape it came from, the round trips
// through the CSV and OTTO loaders, and the errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <embsr/data/delimited_loader.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/otto_loader.hpp>
#include <embsr/data/synthetic_log.hpp>

#include "data_paths.hpp"
#include "dataset_helpers.hpp"

namespace test_synthetic_log {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::LogShape;
using embsr::MicroBehavior;
using embsr::SessionDataset;
using embsr::SynthOptions;

// A dataset from (item token, op token, time) triples per session.
struct Ev {
  std::string item, op;
  double time;
};
SessionDataset make_dataset(const std::vector<std::vector<Ev>>& sessions) {
  SessionDataset ds;
  std::vector<MicroBehavior> events;
  for (std::size_t s = 0; s < sessions.size(); ++s) {
    events.clear();
    for (const auto& e : sessions[s])
      events.push_back(MicroBehavior{ds.item_vocab.add(e.item), ds.op_vocab.add(e.op), e.time});
    ds.add_session(embsr::Span<const MicroBehavior>(events.data(), events.size()), events.back().time,
                   std::to_string(s));
  }
  return ds;
}

// Row o of the transitions as probabilities.
std::vector<double> row_probabilities(const LogShape& shape, std::size_t o) {
  std::vector<double> p = shape.operation_transitions[o];
  double sum = 0;
  for (const double x : p) sum += x;
  for (double& x : p) x /= sum;
  return p;
}

double mean_length(const LogShape& s) {
  double n = 0, w = 0;
  for (std::size_t i = 0; i < s.session_length_values.size(); ++i) {
    n += static_cast<double>(s.session_length_values[i]) * s.session_length_weights[i];
    w += s.session_length_weights[i];
  }
  return n / w;
}

std::string write_log(embsr::SynthFormat format, const LogShape& shape, const SynthOptions& o) {
  std::ostringstream out;
  embsr::write_synthetic_log(out, "memory", format, shape, o);
  return out.str();
}

std::vector<std::string> jd_files() {
  return {embsr::test::repo_data("jd_appliances/HUP_Data/JD_Applicances_sample"),
          embsr::test::repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")};
}

}  // namespace

TEST_CASE("fit_log_shape counts operations, lengths, repeats and gaps of hand-made sessions", "[data][synth]") {
  // Session 0: a a b a c b  (ops x y x x y x), times 0 1 3 6 10 15
  // Session 1: d d          (ops y y),         times 0 2
  const SessionDataset ds = make_dataset({{{"a", "x", 0}, {"a", "y", 1}, {"b", "x", 3}, {"a", "x", 6}, {"c", "y", 10}, {"b", "x", 15}},
                                          {{"d", "y", 0}, {"d", "y", 2}}});
  embsr::FitOptions fo;
  fo.gap_quantile_count = 3;  // min, median, max
  fo.calibration_steps = 4;
  const LogShape s = embsr::fit_log_shape(ds, fo);
  REQUIRE(s.operation_names == std::vector<std::string>{"x", "y"});
  CHECK(s.initial_operation == std::vector<double>{1, 1});
  // Transitions (prev -> next, stay S / move M): x-S->y (a,a); y-M->x (a->b); x-M->x (b->a);
  // x-M->y (a->c); y-M->x (c->b); y-S->y (d,d). Columns: stay x, stay y, move x, move y.
  CHECK(s.operation_transitions[0] == std::vector<double>{0, 1, 1, 1});
  CHECK(s.operation_transitions[1] == std::vector<double>{0, 1, 2, 0});
  CHECK(s.session_length_values == std::vector<std::size_t>{2, 6});
  CHECK(s.session_length_weights == std::vector<double>{1, 1});
  // Moves where an earlier item other than the current exists: b->a (repeat), a->c (new), c->b
  // (repeat); a->b comes first (only a seen). 2 of 3.
  CHECK(s.repeat_share == Approx(2.0 / 3.0));
  // By position (10 bins of i * 10 / 6): b->a at i = 3 (bin 5, repeat), a->c at i = 4 (bin 6, new);
  // c->b at i = 5 is the session's last move (repeat). Bins without moves take the overall share.
  CHECK(s.repeat_share_last_move == Approx(1.0));
  REQUIRE(s.repeat_share_by_position.size() == 10);
  for (std::size_t k = 0; k < 10; ++k) {
    CAPTURE(k);
    CHECK(s.repeat_share_by_position[k] == Approx(k == 5 ? 1.0 : k == 6 ? 0.0 : 2.0 / 3.0));
  }
  // Gaps 1 2 3 4 5 2 sorted 1 2 2 3 4 5: min 1, value at round(0.5 * 5) = index 3 (llround: 2.5 -> 3) = 3, max 5.
  CHECK(s.gap_quantiles == std::vector<double>{1, 3, 5});
  // Times near 0 are not unix times: the default start and inter-arrival stay.
  CHECK(s.start_time == LogShape{}.start_time);
  CHECK(s.mean_session_interarrival == LogShape{}.mean_session_interarrival);
  CHECK(s.fitted_sessions == 2);
  CHECK(s.fitted_events == 8);
  CHECK(s.fitted_items == 4);
}

TEST_CASE("fit_log_shape takes the start and the session rate from absolute times", "[data][synth]") {
  const double t0 = 1.6e9;
  const SessionDataset ds = make_dataset({{{"a", "x", t0}, {"b", "x", t0 + 5}},
                                          {{"a", "x", t0 + 100}, {"c", "x", t0 + 101}},
                                          {{"b", "x", t0 + 40}, {"a", "x", t0 + 41}}});
  embsr::FitOptions fo;
  fo.calibration_steps = 2;
  const LogShape s = embsr::fit_log_shape(ds, fo);
  CHECK(s.start_time == t0);
  CHECK(s.mean_session_interarrival == Approx(50.0));  // (t0+100 - t0) / 2 gaps
}

TEST_CASE("the co-occurrence share counts new-item moves whose pair occurs in another session", "[data][synth]") {
  // Sessions {1 2 3}, {1 2}, {3 4}, {5 5 1}. New-item moves: 1->2 (also in session 1: yes),
  // 2->3 (only session 0: no), 1->2 (also in session 0: yes), 3->4 (no), 5->1 (no). 2 of 5.
  const std::vector<embsr::offset_t> offsets{0, 3, 5, 7, 10};
  const std::vector<embsr::index_t> items{1, 2, 3, 1, 2, 3, 4, 5, 5, 1};
  CHECK(embsr::detail::measure_co_occurrence(offsets, items.data(), 4, 6) == Approx(2.0 / 5.0));
  // Only the first 2 sessions: 1->2 twice (yes, yes), 2->3 (no): 2 of 3.
  CHECK(embsr::detail::measure_co_occurrence(offsets, items.data(), 2, 6) == Approx(2.0 / 3.0));
}

TEST_CASE("the Zipf exponent is the maximum of the rank likelihood", "[data][synth]") {
  const std::vector<std::uint64_t> counts{400, 10, 120, 60, 35, 25, 20, 14, 11, 9, 8, 7, 7, 6, 5, 4, 3, 2, 1, 1};
  const double s = embsr::detail::fit_zipf_exponent(counts);
  // Brute force: log-likelihood sum_r c_r (-s ln r - ln Z(s)) on a fine grid.
  std::vector<std::uint64_t> sorted = counts;
  std::sort(sorted.rbegin(), sorted.rend());
  auto loglik = [&](double e) {
    double z = 0, l = 0, n = 0;
    for (std::size_t r = 1; r <= sorted.size(); ++r) z += std::pow(static_cast<double>(r), -e);
    for (std::size_t r = 1; r <= sorted.size(); ++r) {
      l += static_cast<double>(sorted[r - 1]) * -e * std::log(static_cast<double>(r));
      n += static_cast<double>(sorted[r - 1]);
    }
    return l - n * std::log(z);
  };
  double best = 0, best_l = -1e300;
  for (double e = 0; e <= 4; e += 1e-4) {
    const double l = loglik(e);
    if (l > best_l) best_l = l, best = e;
  }
  CHECK(s == Approx(best).margin(2e-4));
  CHECK(embsr::detail::fit_zipf_exponent({5}) == 0.0);  // one item: nothing to fit
}

TEST_CASE("the built-in shape is the fit of the shipped JD Appliances sample", "[data][synth]") {
  const SessionDataset jd = embsr::load_jd(jd_files());
  const LogShape fit = embsr::fit_log_shape(jd);
  const LogShape def = embsr::default_log_shape();
  REQUIRE_NOTHROW(def.validate());
  // Counted and measured numbers: the same computation on the same data, so equal (doubles printed
  // with 17 digits round-trip exactly).
  CHECK(def.operation_names == fit.operation_names);
  CHECK(def.initial_operation == fit.initial_operation);
  CHECK(def.operation_transitions == fit.operation_transitions);
  CHECK(def.session_length_values == fit.session_length_values);
  CHECK(def.session_length_weights == fit.session_length_weights);
  CHECK(def.gap_quantiles == fit.gap_quantiles);
  CHECK(def.fitted_sessions == fit.fitted_sessions);
  CHECK(def.fitted_events == fit.fitted_events);
  CHECK(def.fitted_items == fit.fitted_items);
  CHECK(def.items_per_group == fit.items_per_group);
  CHECK(def.zipf_exponent == Approx(fit.zipf_exponent).epsilon(1e-9));
  CHECK(def.repeat_share == Approx(fit.repeat_share).epsilon(1e-12));
  CHECK(def.repeat_share_last_move == Approx(fit.repeat_share_last_move).epsilon(1e-12));
  REQUIRE(def.repeat_share_by_position.size() == fit.repeat_share_by_position.size());
  for (std::size_t k = 0; k < def.repeat_share_by_position.size(); ++k)
    CHECK(def.repeat_share_by_position[k] == Approx(fit.repeat_share_by_position[k]).epsilon(1e-12));
  CHECK(def.co_occurrence_share == Approx(fit.co_occurrence_share).epsilon(1e-12));
  CHECK(def.heaps_exponent == Approx(fit.heaps_exponent).epsilon(1e-9));
  // Calibrated by simulation: a libm that rounds pow / log differently in the last bit could flip a
  // draw and move the result within the calibration's jitter (item_universe +-3%, the exponent and
  // group_stay +-0.02: the spread of the last iterates, see fit_log_shape).
  CHECK(static_cast<double>(def.item_universe) == Approx(static_cast<double>(fit.item_universe)).epsilon(0.03));
  CHECK(def.item_weight_exponent == Approx(fit.item_weight_exponent).margin(0.02));
  CHECK(def.group_stay == Approx(fit.group_stay).margin(0.02));
  // What SOURCE.md states about these files: 1,866 sessions, 78,040 events, 11,444 items after dedupe.
  CHECK(def.fitted_sessions == 1866);
  CHECK(def.fitted_events == 78040);
  CHECK(def.fitted_items == 11444);
}

TEST_CASE("generation is a pure function of the seed and of the requested size", "[data][synth]") {
  const LogShape shape = embsr::default_log_shape();
  SynthOptions o;
  o.seed = 42;
  o.events = 5000;
  const std::string a = write_log(embsr::SynthFormat::Csv, shape, o);
  CHECK(a == write_log(embsr::SynthFormat::Csv, shape, o));
  SynthOptions other = o;
  other.seed = 43;
  CHECK(a != write_log(embsr::SynthFormat::Csv, shape, other));
  // --events: exactly that many rows (plus the header).
  CHECK(std::count(a.begin(), a.end(), '\n') == 5001);
  // --sessions: exactly that many sessions.
  SynthOptions by_sessions;
  by_sessions.sessions = 37;
  const SessionDataset ds = embsr::generate_dataset(shape, by_sessions);
  CHECK(ds.num_sessions() == 37);
  // The item universe is given, or scales with the size.
  SynthOptions fixed = o;
  fixed.items = 123;
  embsr::SyntheticLogGenerator g(shape, fixed);
  CHECK(g.num_items() == 123);
  SynthOptions big = o;
  big.events = shape.fitted_events * 8;
  CHECK(embsr::SyntheticLogGenerator(shape, big).num_items() ==
        static_cast<std::size_t>(std::round(static_cast<double>(shape.item_universe) * std::pow(8.0, shape.heaps_exponent))));
}

TEST_CASE("a generated log refits to the shape it was generated from", "[data][synth]") {
  const LogShape shape = embsr::default_log_shape();
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    SynthOptions o;
    o.seed = seed;
    o.sessions = shape.fitted_sessions;  // the size the item statistics were calibrated at
    const SessionDataset ds = embsr::generate_dataset(shape, o);
    embsr::FitOptions fo;
    fo.calibration_steps = 2;  // the measured statistics are compared, not the calibration
    const LogShape refit = embsr::fit_log_shape(ds, fo);
    // Tolerances: several times the spread over seeds (measured over seeds 1..6: distinct items
    // 11,253..11,525, Zipf 0.683..0.694, co-occurrence 0.401..0.416), wide enough for any seed,
    // narrow enough to catch a wrong model (no groups: co-occurrence ~0.18; no universe
    // calibration: ~9,000 distinct items; the uncalibrated exponent refits ~0.56).
    CHECK(refit.zipf_exponent == Approx(shape.zipf_exponent).margin(0.03));
    CHECK(static_cast<double>(refit.fitted_items) == Approx(static_cast<double>(shape.fitted_items)).epsilon(0.05));
    CHECK(refit.co_occurrence_share == Approx(shape.co_occurrence_share).margin(0.03));
    // A share of ~43,000 moves: its standard error is ~0.003.
    CHECK(refit.repeat_share == Approx(shape.repeat_share).margin(0.02));
    // ~4,000 moves per tenth of the sessions (s.e. <= 0.008); one last move per session (s.e. ~0.012).
    for (std::size_t k = 0; k < shape.repeat_share_by_position.size(); ++k) {
      CAPTURE(k);
      CHECK(refit.repeat_share_by_position[k] == Approx(shape.repeat_share_by_position[k]).margin(0.04));
    }
    CHECK(refit.repeat_share_last_move == Approx(shape.repeat_share_last_move).margin(0.05));
    // 1,866 session lengths of standard deviation ~20: the mean's standard error is ~0.5 (1.2%).
    CHECK(mean_length(refit) == Approx(mean_length(shape)).epsilon(0.05));
    // The chain: rows seen at least 2,000 times, each probability within 0.03 (binomial standard
    // error <= 0.011 at 2,000 draws).
    REQUIRE(refit.operation_names == shape.operation_names);
    for (std::size_t op = 0; op < shape.num_operations(); ++op) {
      double seen = 0;
      for (const double x : shape.operation_transitions[op]) seen += x;
      if (seen < 2000) continue;
      const auto want = row_probabilities(shape, op), got = row_probabilities(refit, op);
      for (std::size_t k = 0; k < want.size(); ++k) {
        CAPTURE(op, k);
        CHECK(got[k] == Approx(want[k]).margin(0.03));
      }
    }
    // Gaps: the median within 2 s (interpolated quantiles, rounded to seconds).
    const std::size_t mid = shape.gap_quantiles.size() / 2;
    CHECK(refit.gap_quantiles[mid] == Approx(shape.gap_quantiles[mid]).margin(2.0));
    // Absolute times now: sessions start mean_session_interarrival apart (exponential, ~1,866
    // gaps: standard error 2.3%).
    CHECK(refit.start_time == shape.start_time);
    CHECK(refit.mean_session_interarrival == Approx(shape.mean_session_interarrival).epsilon(0.1));
  }
}

TEST_CASE("a generated CSV log loads back as the generated sessions", "[data][synth]") {
  const LogShape shape = embsr::default_log_shape();
  SynthOptions o;
  o.seed = 9;
  o.events = 20000;
  const SessionDataset want = embsr::generate_dataset(shape, o);
  std::istringstream in(write_log(embsr::SynthFormat::Csv, shape, o));
  embsr::DelimitedOptions d;
  d.session_column = "session";
  d.time_column = "timestamp";
  d.item_column = "item";
  d.operation_column = "operation";
  const SessionDataset got = embsr::load_delimited(in, "synth.csv", d);
  REQUIRE(got.num_sessions() == want.num_sessions());
  REQUIRE(got.num_events() == 20000);
  for (std::size_t s = 0; s < want.num_sessions(); ++s) {
    CAPTURE(s);
    CHECK(*got.session(s).key == *want.session(s).key);
    CHECK(embsr::test::item_tokens(got, s) == embsr::test::item_tokens(want, s));
    CHECK(embsr::test::op_names(got, s) == embsr::test::op_names(want, s));
    CHECK(embsr::test::times_of(got, s) == embsr::test::times_of(want, s));
  }
}

TEST_CASE("the CSV loader gives the same sessions for rows grouped by session and rows in time order", "[data][synth]") {
  // The generated file keeps each session's rows together (the loader's in-order path, no sort);
  // the same rows stably sorted by timestamp interleave the sessions (the general path, which
  // groups and sorts). Both must give the same sessions.
  const LogShape shape = embsr::default_log_shape();
  SynthOptions o;
  o.seed = 13;
  o.sessions = 200;
  const std::string text = write_log(embsr::SynthFormat::Csv, shape, o);
  std::vector<std::string> lines;
  std::istringstream split(text);
  for (std::string line; std::getline(split, line);) lines.push_back(line);
  auto timestamp = [](const std::string& line) {
    const auto a = line.find(',');
    return std::stoll(line.substr(a + 1, line.find(',', a + 1) - a - 1));
  };
  std::stable_sort(lines.begin() + 1, lines.end(),
                   [&](const std::string& x, const std::string& y) { return timestamp(x) < timestamp(y); });
  std::string interleaved;
  for (const auto& line : lines) interleaved += line + "\n";
  REQUIRE(interleaved != text);
  embsr::DelimitedOptions d;
  d.session_column = "session";
  d.time_column = "timestamp";
  d.item_column = "item";
  d.operation_column = "operation";
  std::istringstream in_a(text), in_b(interleaved);
  const SessionDataset a = embsr::load_delimited(in_a, "grouped.csv", d);
  const SessionDataset b = embsr::load_delimited(in_b, "interleaved.csv", d);
  REQUIRE(a.num_sessions() == 200);
  REQUIRE(b.num_sessions() == 200);
  std::map<std::string, std::size_t> b_index;
  for (std::size_t s = 0; s < b.num_sessions(); ++s) b_index[*b.session(s).key] = s;
  for (std::size_t s = 0; s < a.num_sessions(); ++s) {
    const std::string& key = *a.session(s).key;
    CAPTURE(key);
    REQUIRE(b_index.count(key) == 1);
    const std::size_t t = b_index[key];
    CHECK(embsr::test::item_tokens(a, s) == embsr::test::item_tokens(b, t));
    CHECK(embsr::test::op_names(a, s) == embsr::test::op_names(b, t));
    CHECK(embsr::test::times_of(a, s) == embsr::test::times_of(b, t));
    CHECK(a.session(s).order_key == b.session(t).order_key);
  }
}

TEST_CASE("a generated OTTO log loads back with the operations mapped to clicks, carts, orders", "[data][synth]") {
  const LogShape shape = embsr::default_log_shape();
  SynthOptions o;
  o.seed = 11;
  o.sessions = 300;
  const SessionDataset want = embsr::generate_dataset(shape, o);
  std::istringstream in(write_log(embsr::SynthFormat::Otto, shape, o));
  const SessionDataset got = embsr::load_otto(in, "synth.jsonl");
  REQUIRE(got.num_sessions() == want.num_sessions());
  REQUIRE(got.num_events() == want.num_events());
  const std::map<std::string, std::string> mapping{{"Cart", "carts"}, {"Order", "orders"}};
  std::size_t carts = 0;
  for (std::size_t s = 0; s < want.num_sessions(); ++s) {
    CAPTURE(s);
    CHECK(*got.session(s).key == *want.session(s).key);
    CHECK(embsr::test::item_tokens(got, s) == embsr::test::item_tokens(want, s));
    CHECK(embsr::test::times_of(got, s) == embsr::test::times_of(want, s));
    std::vector<std::string> mapped;
    for (const auto& name : embsr::test::op_names(want, s)) {
      const auto it = mapping.find(name);
      mapped.push_back(it == mapping.end() ? "clicks" : it->second);
      carts += name == "Cart";
    }
    CHECK(embsr::test::op_names(got, s) == mapped);
  }
  CHECK(carts > 0);  // the mapping was exercised
}

TEST_CASE("OTTO event types of operation names", "[data][synth]") {
  CHECK(std::string(embsr::otto_event_type("Cart")) == "carts");
  CHECK(std::string(embsr::otto_event_type("carts")) == "carts");
  CHECK(std::string(embsr::otto_event_type("ORDER")) == "orders");
  CHECK(std::string(embsr::otto_event_type("Cart2Product")) == "clicks");
  CHECK(std::string(embsr::otto_event_type("clicks")) == "clicks");
  CHECK(std::string(embsr::otto_event_type("view")) == "clicks");
}

TEST_CASE("synthetic logs refuse bad arguments with the reason", "[data][synth]") {
  using embsr::InvalidArgument;
  using embsr::test::expect_error;
  const LogShape shape = embsr::default_log_shape();
  auto message = [&](auto&& f) { return std::string(expect_error<InvalidArgument>(f).what()); };
  SynthOptions none;
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(shape, none); }),
             Catch::Contains("exactly one of events and sessions"));
  SynthOptions both;
  both.events = 10;
  both.sessions = 10;
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(shape, both); }),
             Catch::Contains("exactly one of events and sessions"));
  SynthOptions huge;
  huge.events = 10;
  huge.items = SynthOptions::kMaxItems + 1;
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(shape, huge); }), Catch::Contains("items must be at most"));
  SynthOptions ok;
  ok.events = 10;
  LogShape bad = shape;
  bad.operation_transitions[2].pop_back();
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(bad, ok); }), Catch::Contains("operation_transitions row 2"));
  bad = shape;
  bad.initial_operation[0] = -1;
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(bad, ok); }), Catch::Contains("initial_operation"));
  bad = shape;
  bad.repeat_share = 1.5;
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(bad, ok); }), Catch::Contains("repeat_share"));
  bad = shape;
  bad.session_length_values.assign(shape.session_length_values.size(), 3);
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(bad, ok); }), Catch::Contains("ascending"));
  bad = shape;
  bad.gap_quantiles = {5, 1};
  CHECK_THAT(message([&] { embsr::SyntheticLogGenerator(bad, ok); }), Catch::Contains("non-decreasing"));
  bad = shape;
  bad.operation_names[0] = "Home,Product";
  CHECK_THAT(message([&] { write_log(embsr::SynthFormat::Csv, bad, ok); }), Catch::Contains("contains a comma"));
  CHECK_THAT(message([&] { embsr::fit_log_shape(SessionDataset{}); }), Catch::Contains("no sessions"));
}

}  // namespace test_synthetic_log
