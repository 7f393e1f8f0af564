#pragma once
// Model configuration: sizes, the paper's hyper-parameters, the next-operation mode, and the
// ablation switches of MODEL.md section 8 (all of which share the model's code paths).

#include <cmath>
#include <cstdint>
#include <string>

#include <embsr/core/error.hpp>

namespace embsr {

enum class NextOpMode {
  Given,   // the paper's protocol (eq. 13): position 0 carries the operation of the target micro-behavior
  Learned  // position 0 carries a learned [NEXT] operation (its id is num_ops): no look at the label
};

// What encodes the session's sequence before the attention (with use_gnn).
enum class SequenceEncoder {
  Gnn,  // MODEL.md 3: the star GNN over the multigraph, with the operation GRU on its edges
  Rnn   // RNN-Self (paper Sec. V-D): a GRU over each session's [item ; operation] embeddings
};

enum class FusionMode {
  Gate,   // eq. 18: beta = sigmoid(W_f [z ; x_t] + b_f)
  Mlp,    // EMBSR-NF: m = W [z ; x_t] + b
  Fixed   // beta fixed to `fixed_beta` (paper section V-F)
};

struct Config {
  // Sizes (num_items and num_ops come from the data).
  int num_items = 0;
  int num_ops = 0;
  int d = 100;           // embedding size
  int max_length = 50;   // L: longest input in micro-behaviors
  int gnn_steps = 1;
  // Hyper-parameters.
  double dropout = 0.2;
  double w_k = 12.0;      // normalised-scoring weight (eq. 19)
  double init_std = 0.1;  // every parameter ~ N(0, init_std)
  std::uint64_t seed = 1;
  NextOpMode next_op = NextOpMode::Given;
  // Ablations (MODEL.md 8).
  bool use_attention = true;   // false: EMBSR-NS (session vector from the GNN side: the star)
  bool use_gnn = true;         // false: EMBSR-NG (no GNN, no operation GRU)
  bool use_run_gru = true;     // false: no operation GRU (run states are zero)
  bool use_relations = true;   // false: absolute operation embeddings with standard attention
  // false: no operation embedding in the attention's inputs or query (SGNN-Self, SGNN-Seq-Self and
  // RNN-Self of the paper's Sec. V-D: a standard self-attention). With the GNN (or without an
  // encoder) the attention then runs over the session's macro items, each item once: over its
  // micro-behaviors it would repeat an item once per operation and so still see the runs' lengths.
  bool use_attention_ops = true;
  SequenceEncoder encoder = SequenceEncoder::Gnn;  // with use_gnn
  FusionMode fusion = FusionMode::Gate;
  double fixed_beta = 0.5;     // with FusionMode::Fixed
  // EMBSR-R (docs/REPEAT.md): a repeat score r_c for each of the session's own items, added to its
  // logit as a bonus, or (repeat_mixture) used by the repeat/explore mixture.
  bool use_repeat = false;
  int repeat_buckets = 10;     // R: recency buckets of the bonus (micro-behaviors since the item's last one)
  // With use_repeat: the repeat scores feed a repeat/explore mixture (a gate, a softmax over the
  // session's items and one over the other items; layers/repeat_mixture.hpp) instead of a bonus.
  bool repeat_mixture = false;

  int num_op_ids() const { return num_ops + 1; }  // operations plus the [NEXT] id
  // RNN-Self's encoder is on (it replaces the GNN, so only with use_gnn).
  bool rnn_encoder() const { return use_gnn && encoder == SequenceEncoder::Rnn; }
  // The attention (and its inputs) runs over the macro items, each once: without operations over
  // node states (the GNN's, or the item embeddings without an encoder).
  bool attention_over_macro_items() const { return !use_attention_ops && !rnn_encoder(); }

  void validate() const {
    auto fail = [](const std::string& what) { throw InvalidArgument("Config: " + what); };
    if (num_items < 1) fail("num_items must be >= 1, got " + std::to_string(num_items));
    if (num_ops < 1) fail("num_ops must be >= 1, got " + std::to_string(num_ops));
    if (d < 1) fail("d must be >= 1, got " + std::to_string(d));
    if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
    if (gnn_steps < 1) fail("gnn_steps must be >= 1, got " + std::to_string(gnn_steps));
    if (!(dropout >= 0 && dropout < 1)) fail("dropout must be in [0, 1), got " + std::to_string(dropout));
    // w_k scales every logit (eq. 19): infinite, it turns every score into +-inf or NaN.
    if (!(w_k > 0 && std::isfinite(w_k))) fail("w_k must be finite and > 0, got " + std::to_string(w_k));
    if (!(init_std > 0 && std::isfinite(init_std)))
      fail("init_std must be finite and > 0, got " + std::to_string(init_std));
    if (use_repeat && (repeat_buckets < 1 || repeat_buckets > (1 << 20)))
      fail("repeat_buckets must be in [1, 2^20], got " + std::to_string(repeat_buckets));
    if (use_relations && !use_attention_ops)
      fail("relations need attention_ops = true (the dyadic encoding is an encoding of operations)");
    if (encoder == SequenceEncoder::Rnn) {
      if (!use_gnn) fail("encoder = rnn replaces the GNN: it needs gnn = true (gnn = false leaves no encoder at all)");
      if (use_run_gru) fail("encoder = rnn reads the operations itself: it needs run_gru = false");
      if (use_repeat) fail("repeat needs the GNN's node states: it does not run with encoder = rnn");
    }
    if (repeat_mixture && !use_repeat) fail("repeat_mixture needs repeat = true (the mixture scores the session's items with the repeat path)");
    if (fusion == FusionMode::Fixed && !(fixed_beta >= 0 && fixed_beta <= 1))
      fail("fixed_beta must be in [0, 1], got " + std::to_string(fixed_beta));
  }
};

}  // namespace embsr
