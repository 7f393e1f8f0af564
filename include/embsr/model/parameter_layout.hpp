#pragma once
// EMBSR's parameter layout as a function of its Config alone: the names, shapes and order of the
// entries of the flat parameter buffer (model/parameters.hpp), and what a model of that Config
// costs in memory. Free of Kokkos, so that a checkpoint's stored layout can be checked against its
// stored Config before anything is allocated (io/checkpoint_format.hpp), and so that the model
// (model/embsr.hpp) declares its parameters from this one list.
//
// Order (MODEL.md section 6: parameter p is initialised from Rng(seed, 1000 + p), so the order is
// part of the model's definition and of the checkpoint format):
//   item_embedding [V x d], op_embedding [(O+1) x d],
//   with the GNN: run_gru (unless use_run_gru is off), then per GNN step s: ggnn<s> (W_in, b_in,
//   W_out, b_out, GRU cell), star<s> (W_q1 .. b_q2); highway,
//   with the RNN encoder instead (RNN-Self): rnn (a GRU cell with W_ih [3d x 2d]),
//   with attention: attention.* (positions [(L+1) x d], relations [(O+1)^2 x d] with relations),
//   fusion.W_f / b_f (gate) or nf.W / nf.b (EMBSR-NF),
//   with the repeat path (docs/REPEAT.md): repeat.op_count [O x 1], repeat.next_op [(O+1) x O],
//   repeat.recency [R x 1], repeat.state [d x 1], repeat.bias [1 x 1].

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/model_options.hpp>

namespace embsr {

struct ParameterEntry {
  std::string name;
  std::size_t offset = 0;  // into the flat buffers
  std::size_t rows = 0, cols = 0;
  std::size_t size() const { return rows * cols; }
};

namespace detail {

// Calls visit(name, rows, cols) for every parameter of `config`, in layout order. The shapes are
// computed in 64-bit from int fields (each < 2^31), so rows and cols never overflow; their
// products are left to the caller (see parameter_count).
template <class Visit>
void for_each_parameter(const Config& config, Visit&& visit) {
  const auto d = static_cast<std::uint64_t>(config.d);
  const auto ops = static_cast<std::uint64_t>(config.num_op_ids());
  auto gru = [&](const std::string& prefix, std::uint64_t in) {
    visit(prefix + ".W_ih", 3 * d, in);
    visit(prefix + ".W_hh", 3 * d, d);
    visit(prefix + ".b_ih", std::uint64_t(1), 3 * d);
    visit(prefix + ".b_hh", std::uint64_t(1), 3 * d);
  };
  visit(std::string("item_embedding"), static_cast<std::uint64_t>(config.num_items), d);
  visit(std::string("op_embedding"), ops, d);
  if (config.rnn_encoder()) {
    gru("rnn", 2 * d);
  } else if (config.use_gnn) {
    if (config.use_run_gru) gru("run_gru", d);
    for (int s = 0; s < config.gnn_steps; ++s) {
      const std::string g = "ggnn" + std::to_string(s), st = "star" + std::to_string(s) + ".";
      visit(g + ".W_in", d, 2 * d);
      visit(g + ".b_in", std::uint64_t(1), d);
      visit(g + ".W_out", d, 2 * d);
      visit(g + ".b_out", std::uint64_t(1), d);
      gru(g, 2 * d);
      for (const char* w : {"q1", "k1", "k2", "q2"}) {
        visit(st + "W_" + w, d, d);
        visit(st + "b_" + w, std::uint64_t(1), d);
      }
    }
    visit(std::string("highway.W_g"), d, 2 * d);
    visit(std::string("highway.b_g"), std::uint64_t(1), d);
  }
  if (config.use_attention) {
    for (const char* w : {"Q", "1", "2"}) {
      visit(std::string("attention.W_") + w, d, d);
      visit(std::string("attention.b_") + w, std::uint64_t(1), d);
    }
    visit(std::string("attention.ln_gamma"), std::uint64_t(1), d);
    visit(std::string("attention.ln_beta"), std::uint64_t(1), d);
    visit(std::string("attention.positions"), static_cast<std::uint64_t>(config.max_length) + 1, d);
    if (config.use_relations) visit(std::string("attention.relations"), ops * ops, d);
  }
  if (config.fusion == FusionMode::Gate) {
    visit(std::string("fusion.W_f"), d, 2 * d);
    visit(std::string("fusion.b_f"), std::uint64_t(1), d);
  } else if (config.fusion == FusionMode::Mlp) {
    visit(std::string("nf.W"), d, 2 * d);
    visit(std::string("nf.b"), std::uint64_t(1), d);
  }
  if (config.use_repeat) {
    const auto O = static_cast<std::uint64_t>(config.num_ops);
    visit(std::string("repeat.op_count"), O, std::uint64_t(1));
    visit(std::string("repeat.next_op"), ops, O);
    visit(std::string("repeat.recency"), static_cast<std::uint64_t>(config.repeat_buckets), std::uint64_t(1));
    visit(std::string("repeat.state"), d, std::uint64_t(1));
    visit(std::string("repeat.bias"), std::uint64_t(1), std::uint64_t(1));
    if (config.repeat_mixture) {
      visit(std::string("repeat.gate"), d, std::uint64_t(1));
      visit(std::string("repeat.gate_op"), ops, std::uint64_t(1));
    }
  }
}

// a * b + c, saturating at UINT64_MAX instead of wrapping (the sizes of a hostile Config).
inline std::uint64_t saturating_mul_add(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  if (a != 0 && b > kMax / a) return kMax;
  const std::uint64_t ab = a * b;
  return ab > kMax - c ? kMax : ab + c;
}

}  // namespace detail

// How many entries and scalars a Config's layout has, computed without naming them (so without
// allocating: gnn_steps = 10^6 is answered in constant time). Saturates at UINT64_MAX.
struct ParameterCount {
  std::uint64_t entries = 0;
  std::uint64_t values = 0;
};

inline ParameterCount parameter_count(const Config& config) {
  using detail::saturating_mul_add;
  const auto d = static_cast<std::uint64_t>(config.d);
  const auto ops = static_cast<std::uint64_t>(config.num_op_ids());
  const std::uint64_t gru_entries = 4, gru_in_d = saturating_mul_add(3 * d, d, 3 * d * d + 6 * d);  // W_ih[3d x d]
  const std::uint64_t gru_in_2d = saturating_mul_add(3 * d, 2 * d, 3 * d * d + 6 * d);              // W_ih[3d x 2d]
  ParameterCount c;
  c.entries = 2;
  c.values = saturating_mul_add(static_cast<std::uint64_t>(config.num_items) + ops, d);
  if (config.rnn_encoder()) {
    c.entries += gru_entries;
    c.values = saturating_mul_add(1, gru_in_2d, c.values);
  } else if (config.use_gnn) {
    if (config.use_run_gru) {
      c.entries += gru_entries;
      c.values = saturating_mul_add(1, gru_in_d, c.values);
    }
    // Per step: ggnn (4 + GRU cell) and star (8) entries; 2 [d x 2d] + 2 [1 x d] + cell + 4 [d x d] + 4 [1 x d].
    const std::uint64_t per_step_values = saturating_mul_add(d, 8 * d + 6, gru_in_2d);
    const auto steps = static_cast<std::uint64_t>(config.gnn_steps);
    c.entries = saturating_mul_add(steps, 4 + gru_entries + 8, c.entries) + 2;  // + highway
    c.values = saturating_mul_add(steps, per_step_values, c.values);
    c.values = saturating_mul_add(d, 2 * d + 1, c.values);
  }
  if (config.use_attention) {
    c.entries += 9;  // W_Q, b_Q, W_1, b_1, W_2, b_2, ln_gamma, ln_beta, positions
    c.values = saturating_mul_add(d, 3 * d + 5, c.values);
    c.values = saturating_mul_add(static_cast<std::uint64_t>(config.max_length) + 1, d, c.values);
    if (config.use_relations) {
      c.entries += 1;
      c.values = saturating_mul_add(saturating_mul_add(ops, ops), d, c.values);
    }
  }
  if (config.fusion != FusionMode::Fixed) {
    c.entries += 2;
    c.values = saturating_mul_add(d, 2 * d + 1, c.values);
  }
  if (config.use_repeat) {
    const auto O = static_cast<std::uint64_t>(config.num_ops);
    c.entries += 5;
    c.values = saturating_mul_add(ops + 1, O, c.values);  // op_count, next_op
    c.values = saturating_mul_add(1, static_cast<std::uint64_t>(config.repeat_buckets) + d + 1, c.values);
    if (config.repeat_mixture) {
      c.entries += 2;
      c.values = saturating_mul_add(1, d + ops, c.values);  // gate [d x 1], gate_op [(O+1) x 1]
    }
  }
  return c;
}

// The layout itself: name, offset, rows, cols of every entry. Call parameter_count first when the
// Config is untrusted (this names every entry).
inline std::vector<ParameterEntry> parameter_layout(const Config& config) {
  std::vector<ParameterEntry> entries;
  std::size_t offset = 0;
  detail::for_each_parameter(config, [&](const std::string& name, std::uint64_t rows, std::uint64_t cols) {
    entries.push_back(ParameterEntry{name, offset, static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
    offset += static_cast<std::size_t>(rows * cols);
  });
  return entries;
}

// What a model of `config` needs in memory for batches of `batch_sessions` sessions (each at most
// config.max_length micro-behaviors long), in bytes, saturating. An estimate made to refuse
// impossible models before they are built, not an exact account:
//   parameters and their gradients (2 P floats; training adds Adam's m, v, v_max: 3 P more),
//   the normalised item table (V d), the score matrix (B V; training keeps its gradient too),
//   and per micro-behavior 8 d-vectors of activations, 24 more with the GNN and 32 per GNN step
//   (doubled in training for their gradients); the whole sum with a margin of 25%.
// tests/model/test_parameter_layout.cpp checks that it bounds the Views a model really allocates.
inline std::uint64_t model_memory_bytes(const Config& config, std::uint64_t batch_sessions, bool training) {
  using detail::saturating_mul_add;
  const std::uint64_t P = parameter_count(config).values;
  const auto V = static_cast<std::uint64_t>(config.num_items), d = static_cast<std::uint64_t>(config.d);
  const std::uint64_t events = saturating_mul_add(batch_sessions, static_cast<std::uint64_t>(config.max_length));
  // d-vectors per micro-behavior: 8 for the inputs and the attention, with the GNN 24 more (runs,
  // macro items, star, highway) and 32 per GNN step (measured: about 6, 24 and 24; see the test);
  // with the RNN encoder 24 more (its input [T x 2d], states, gate caches: 13 in the forward).
  const bool rnn = config.rnn_encoder();
  const std::uint64_t vectors =
      rnn ? 8 + 24
          : config.use_gnn ? detail::saturating_mul_add(32, static_cast<std::uint64_t>(config.gnn_steps), 8 + 24) : 8;
  const std::uint64_t per_event = saturating_mul_add(vectors, d);
  std::uint64_t floats = saturating_mul_add(P, training ? 5 : 2);
  floats = saturating_mul_add(V, d, floats);
  floats = saturating_mul_add(saturating_mul_add(batch_sessions, V), training ? 2 : 1, floats);
  floats = saturating_mul_add(saturating_mul_add(events, per_event), training ? 2 : 1, floats);
  const std::uint64_t bytes = saturating_mul_add(floats, 4);
  return saturating_mul_add(bytes / 4, 5);  // + 25%
}

// ---- shared by the other neural models (model/srgnn.hpp and its family) ----------------------

namespace detail {

// Entries from a visitor of (name, rows, cols), in order, with their offsets.
template <class ForEach>
std::vector<ParameterEntry> layout_from(ForEach&& for_each) {
  std::vector<ParameterEntry> entries;
  std::size_t offset = 0;
  for_each([&](const std::string& name, std::uint64_t rows, std::uint64_t cols) {
    entries.push_back(ParameterEntry{name, offset, static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
    offset += static_cast<std::size_t>(rows * cols);
  });
  return entries;
}

}  // namespace detail

// The checkpoint's view of a neural model's parameters (model/model_options.hpp's StateLayout /
// StateCount need only names and shapes; neural models have no tables).
inline StateLayout neural_state_layout(const std::vector<ParameterEntry>& entries) {
  StateLayout l;
  for (const auto& e : entries) l.parameters.push_back(ArraySpec{e.name, e.rows, e.cols});
  return l;
}
inline StateCount neural_state_count(const std::vector<ParameterEntry>& entries) {
  std::uint64_t values = 0;
  for (const auto& e : entries) values = detail::saturating_mul_add(e.rows, e.cols, values);
  return StateCount{entries.size(), values, 0, 0};
}

// Bytes a neural model needs for batches of `batch_sessions`: parameters (with gradients and
// Adam's two moments when training), the [B x V] scores (and their gradients), and
// `vectors_per_event` d-vectors of activations per micro-behavior (twice when training), + 25%.
// An estimate for refusing what cannot fit, like model_memory_bytes.
inline std::uint64_t neural_memory_bytes(const std::vector<ParameterEntry>& entries, std::uint64_t num_items,
                                         std::uint64_t d, std::uint64_t max_length, std::uint64_t vectors_per_event,
                                         std::uint64_t batch_sessions, bool training) {
  using detail::saturating_mul_add;
  std::uint64_t P = 0;
  for (const auto& e : entries) P = saturating_mul_add(e.rows, e.cols, P);
  const std::uint64_t events = saturating_mul_add(batch_sessions, max_length);
  std::uint64_t floats = saturating_mul_add(P, training ? 5 : 2);
  floats = saturating_mul_add(saturating_mul_add(batch_sessions, num_items), training ? 2 : 1, floats);
  floats = saturating_mul_add(saturating_mul_add(events, saturating_mul_add(vectors_per_event, d)), training ? 2 : 1, floats);
  return saturating_mul_add(saturating_mul_add(floats, 4) / 4, 5);
}

}  // namespace embsr
