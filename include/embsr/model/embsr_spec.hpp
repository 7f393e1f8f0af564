#pragma once
// EMBSR as the catalogue sees it (free of Kokkos): its options (Config as text, both ways), its
// presets (the paper's ablations of Table IV as names) and, from the options alone, its parameter
// layout and memory estimate. The model itself is model/embsr.hpp.
//
// The EMBSR preset list: every preset is the same model (one composition, model/embsr.hpp) with
// other defaults; each takes every option, so `embsr --no-attention` and `embsr-ns` are the same
// model, recorded in a checkpoint under the name the user chose.
//   embsr     the full model (MODEL.md 3-5)
//   embsr-ns  EMBSR-NS: no operation-aware self-attention; the session vector is the star node
//   embsr-ng  EMBSR-NG: no GNN and no operation GRU; the attention reads the item embeddings
//   embsr-nf  EMBSR-NF: the fusion gate replaced by a linear layer on [z ; x_t]
//   embsr-r   EMBSR-R: EMBSR with the repeat path of docs/REPEAT.md (ours, issue 14)
//   sgnn-dyadic    SGNN-Dyadic (Sec. V-E, Fig. 5): the star GNN over macro items without the operation
//                  GRU, with the dyadic operation encoding of the attention
//   sgnn-abs-self  SGNN-Abs-Self (Sec. V-E, Fig. 5): the same with absolute operation embeddings in a
//                  standard self-attention instead of the dyadic encoding
//   sgnn-self      SGNN-Self (Sec. V-D, Fig. 4): the star GNN over macro items, no operation GRU, and a
//                  standard self-attention over the macro items: no micro-behavior information
//   sgnn-seq-self  SGNN-Seq-Self (Sec. V-D, Fig. 4): SGNN-Self with the operation GRU on the GNN's edges
//   rnn-self       RNN-Self (Sec. V-D, Fig. 4): SGNN-Self with a GRU over [item ; operation] embeddings
//                  in place of the whole GNN layer
// Where Sec. V is silent (the variants' query and last-item vector), the variants keep EMBSR's own
// choices: model/config.hpp (use_attention_ops, encoder) and docs/GRAPH_MODELS.md section 6.

#include <cstdint>
#include <string>
#include <vector>

#include <embsr/core/error.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/parameter_layout.hpp>

namespace embsr {

template <class ExecSpace, class Scalar>
class EMBSR;

// Every field of a Config, as options (the checkpoint's record of the model).
inline ModelOptions embsr_options(const Config& c) {
  ModelOptions o;
  o.set("num_items", c.num_items);
  o.set("num_ops", c.num_ops);
  o.set("max_length", c.max_length);
  o.set("d", c.d);
  o.set("gnn_steps", c.gnn_steps);
  o.set("dropout", c.dropout);
  o.set("w_k", c.w_k);
  o.set("init_std", c.init_std);
  o.set("seed", c.seed);
  o.set("next_op", c.next_op == NextOpMode::Given ? "given" : "learned");
  o.set("attention", c.use_attention);
  o.set("gnn", c.use_gnn);
  o.set("run_gru", c.use_run_gru);
  o.set("relations", c.use_relations);
  o.set("attention_ops", c.use_attention_ops);
  o.set("encoder", c.encoder == SequenceEncoder::Gnn ? "gnn" : "rnn");
  o.set("fusion", c.fusion == FusionMode::Gate ? "gate" : c.fusion == FusionMode::Mlp ? "mlp" : "fixed");
  o.set("fixed_beta", c.fixed_beta);
  o.set("repeat", c.use_repeat);
  o.set("repeat_buckets", c.repeat_buckets);
  o.set("repeat_mixture", c.repeat_mixture);
  return o;
}

namespace detail {

// The options of the EMBSR presets, with their help texts (defaults: a default Config + `preset`).
inline std::vector<OptionSpec> embsr_option_specs(const Config& defaults) {
  const ModelOptions d = embsr_options(defaults);
  auto text = [&](const char* key) { return *d.find(key); };
  std::vector<OptionSpec> specs = data_option_specs();
  specs[2].default_value = text("max_length");
  // Search spaces (embsr-tune, train/tuner.hpp): sizes and regularisers, in ranges a 2-core
  // machine searches in minutes: d 16-64 log-uniform (the default 100 costs too much per trial
  // there; fix --option d=100 to keep it), one or two GNN steps (default 1), dropout 0-0.5, w_k
  // 8-20 around the default 12. The architecture switches (next_op, attention, gnn, run_gru,
  // relations, attention_ops, encoder, fusion) are the presets' business; init_std, seed and fixed_beta are not tuned.
  const std::vector<OptionSpec> own = {
      {"d", OptionKind::Integer, text("d"), "embedding size", {}, false, true, search_range(16, 64, true)},
      {"gnn_steps", OptionKind::Integer, text("gnn_steps"), "GGNN + star steps", {}, false, true, search_range(1, 2)},
      {"dropout", OptionKind::Number, text("dropout"), "dropout of the attention", {}, false, false,
       search_range(0.0, 0.5)},
      {"w_k", OptionKind::Number, text("w_k"), "normalised-scoring weight (eq. 19)", {}, false, true,
       search_range(8.0, 20.0)},
      {"init_std", OptionKind::Number, text("init_std"), "every parameter ~ N(0, init_std)", {}, false, false, {}},
      {"seed", OptionKind::Integer, text("seed"), "seed of initialisation and dropout", {}, false, false, {}},
      {"next_op", OptionKind::Choice, text("next_op"), "next operation: given (eq. 13) or a learned [NEXT]",
       {"given", "learned"}, false, true, {}},
      {"attention", OptionKind::Boolean, text("attention"), "operation-aware self-attention (off: EMBSR-NS)", {}, false,
       true, {}},
      {"gnn", OptionKind::Boolean, text("gnn"), "GNN and operation GRU (off: EMBSR-NG)", {}, false, true, {}},
      {"run_gru", OptionKind::Boolean, text("run_gru"), "operation GRU (off: zero run states)", {}, false, true, {}},
      {"relations", OptionKind::Boolean, text("relations"), "dyadic relation embeddings (off: absolute operations)", {},
       false, true, {}},
      {"attention_ops", OptionKind::Boolean, text("attention_ops"),
       "operation embeddings in the attention (off: none, and the attention runs over the macro items)", {}, false, true,
       {}},
      {"encoder", OptionKind::Choice, text("encoder"),
       "sequence encoder with gnn=true: the star GNN (gnn) or a GRU over [item ; operation] (rnn, RNN-Self)",
       {"gnn", "rnn"}, false, true, {}},
      {"fusion", OptionKind::Choice, text("fusion"), "gate (eq. 18), mlp (EMBSR-NF) or fixed", {"gate", "mlp", "fixed"},
       false, true, {}},
      {"fixed_beta", OptionKind::Number, text("fixed_beta"), "beta with fusion=fixed", {}, false, true, {}},
      {"repeat", OptionKind::Boolean, text("repeat"),
       "the repeat path of EMBSR-R: the session's own items scored from their operations, recency and state (docs/REPEAT.md)", {}, false, true, {}},
      {"repeat_buckets", OptionKind::Integer, text("repeat_buckets"),
       "recency buckets of the repeat score (micro-behaviors since the item's last one)", {}, false, true, {}},
      {"repeat_mixture", OptionKind::Boolean, text("repeat_mixture"),
       "with repeat: a gated mixture of a softmax over the session's items and one over the others, instead of a bonus",
       {}, false, true, {}},
  };
  specs.insert(specs.end(), own.begin(), own.end());
  return specs;
}

}  // namespace detail

// The Config the options describe (absent keys keep `defaults`' values), validated.
inline Config embsr_config(const ModelOptions& o, const Config& defaults = Config{}) {
  Config c = defaults;
  c.num_items = o.get_int32("num_items", c.num_items);
  c.num_ops = o.get_int32("num_ops", c.num_ops);
  c.max_length = o.get_int32("max_length", c.max_length);
  c.d = o.get_int32("d", c.d);
  c.gnn_steps = o.get_int32("gnn_steps", c.gnn_steps);
  c.dropout = o.get_double("dropout", c.dropout);
  c.w_k = o.get_double("w_k", c.w_k);
  c.init_std = o.get_double("init_std", c.init_std);
  c.seed = o.get_uint("seed", c.seed);
  c.next_op = o.get_choice("next_op", c.next_op == NextOpMode::Given ? "given" : "learned", {"given", "learned"}) == "given"
                  ? NextOpMode::Given
                  : NextOpMode::Learned;
  c.use_attention = o.get_bool("attention", c.use_attention);
  c.use_gnn = o.get_bool("gnn", c.use_gnn);
  c.use_run_gru = o.get_bool("run_gru", c.use_run_gru);
  c.use_relations = o.get_bool("relations", c.use_relations);
  c.use_attention_ops = o.get_bool("attention_ops", c.use_attention_ops);
  c.encoder = o.get_choice("encoder", c.encoder == SequenceEncoder::Gnn ? "gnn" : "rnn", {"gnn", "rnn"}) == "gnn"
                  ? SequenceEncoder::Gnn
                  : SequenceEncoder::Rnn;
  const std::string fusion = o.get_choice(
      "fusion", c.fusion == FusionMode::Gate ? "gate" : c.fusion == FusionMode::Mlp ? "mlp" : "fixed", {"gate", "mlp", "fixed"});
  c.fusion = fusion == "gate" ? FusionMode::Gate : fusion == "mlp" ? FusionMode::Mlp : FusionMode::Fixed;
  c.fixed_beta = o.get_double("fixed_beta", c.fixed_beta);
  c.use_repeat = o.get_bool("repeat", c.use_repeat);
  c.repeat_buckets = o.get_int32("repeat_buckets", c.repeat_buckets);
  c.repeat_mixture = o.get_bool("repeat_mixture", c.repeat_mixture);
  c.validate();
  return c;
}

// One preset of EMBSR: a registry entry (model/registry.hpp) of the same model with other defaults.
template <class Preset>
struct EmbsrSpec {
  template <class ExecSpace>
  using model = EMBSR<ExecSpace, float>;
  using config_type = Config;

  static Config defaults() {
    Config c;
    Preset::apply(c);
    return c;
  }
  static ModelOptions options_of(const Config& c) { return embsr_options(c); }
  static Config config_of(const ModelOptions& o) { return embsr_config(o, defaults()); }

  static ModelSpec spec() {
    ModelSpec s;
    s.info = ModelInfo{Preset::name, "graph neural network + self-attention over micro-behaviors", Preset::description,
                       "Yuan et al., Micro-behavior Encoding for Session-based Recommendation, ICDE 2022", true,
                       "embsr"};
    s.options = detail::embsr_option_specs(defaults());
    s.validate = [](const ModelOptions& o) { (void)config_of(o); };
    s.count = [](const ModelOptions& o) {
      const ParameterCount c = parameter_count(config_of(o));
      return StateCount{c.entries, c.values, 0, 0};
    };
    s.layout = [](const ModelOptions& o) {
      StateLayout l;
      for (const auto& e : parameter_layout(config_of(o))) l.parameters.push_back(ArraySpec{e.name, e.rows, e.cols});
      return l;
    };
    s.memory_bytes = [](const ModelOptions& o, std::uint64_t batch, bool training) {
      return model_memory_bytes(config_of(o), batch, training);
    };
    return s;
  }
};

namespace embsr_presets {

struct Full {
  static constexpr const char* name = "embsr";
  static constexpr const char* description = "EMBSR: multigraph GNN with operation GRU and star node, operation-aware self-attention, fusion gate";
  static void apply(Config&) {}
};
struct NoSelfAttention {
  static constexpr const char* name = "embsr-ns";
  static constexpr const char* description = "EMBSR-NS (Table IV): without the operation-aware self-attention";
  static void apply(Config& c) { c.use_attention = false; }
};
struct NoGnn {
  static constexpr const char* name = "embsr-ng";
  static constexpr const char* description = "EMBSR-NG (Table IV): without the GNN and the operation GRU";
  static void apply(Config& c) { c.use_gnn = false; }
};
struct NoFusionGate {
  static constexpr const char* name = "embsr-nf";
  static constexpr const char* description = "EMBSR-NF (Table IV): a linear layer on [z ; x_t] instead of the fusion gate";
  static void apply(Config& c) { c.fusion = FusionMode::Mlp; }
};

struct Repeat {
  static constexpr const char* name = "embsr-r";
  static constexpr const char* description =
      "EMBSR-R: EMBSR with a repeat/explore gate, a softmax over the session's own items scored from their "
      "operations, recency and state, and EMBSR's scores over the other items";
  static void apply(Config& c) {
    c.use_repeat = true;
    c.repeat_mixture = true;
  }
};

// The paper's Section V variants that are EMBSR with parts switched off.
struct SgnnDyadic {
  static constexpr const char* name = "sgnn-dyadic";
  static constexpr const char* description =
      "SGNN-Dyadic (Sec. V-E, Fig. 5): EMBSR without the operation GRU (the star GNN sees macro items only), with "
      "the dyadic operation encoding";
  static void apply(Config& c) { c.use_run_gru = false; }
};
struct SgnnAbsSelf {
  static constexpr const char* name = "sgnn-abs-self";
  static constexpr const char* description =
      "SGNN-Abs-Self (Sec. V-E, Fig. 5): EMBSR without the operation GRU and with absolute operation embeddings "
      "in a standard self-attention instead of the dyadic encoding";
  static void apply(Config& c) {
    c.use_run_gru = false;
    c.use_relations = false;
  }
};
struct SgnnSelf {
  static constexpr const char* name = "sgnn-self";
  static constexpr const char* description =
      "SGNN-Self (Sec. V-D, Fig. 4): the star GNN over macro items without the operation GRU, and a standard "
      "self-attention over the macro items: no micro-behavior information";
  static void apply(Config& c) {
    c.use_run_gru = false;
    c.use_relations = false;
    c.use_attention_ops = false;
  }
};
struct SgnnSeqSelf {
  static constexpr const char* name = "sgnn-seq-self";
  static constexpr const char* description =
      "SGNN-Seq-Self (Sec. V-D, Fig. 4): SGNN-Self with the operation GRU (the sequential pattern on the GNN's edges)";
  static void apply(Config& c) {
    c.use_relations = false;
    c.use_attention_ops = false;
  }
};
struct RnnSelf {
  static constexpr const char* name = "rnn-self";
  static constexpr const char* description =
      "RNN-Self (Sec. V-D, Fig. 4): a GRU over the [item ; operation] embeddings of the micro-behaviors in place of "
      "the GNN, then a standard self-attention over its states";
  static void apply(Config& c) {
    c.encoder = SequenceEncoder::Rnn;
    c.use_run_gru = false;
    c.use_relations = false;
    c.use_attention_ops = false;
  }
};

}  // namespace embsr_presets

// A concrete EMBSR (of either precision) registers as the full model; its options say which parts
// are switched off.
template <class ExecSpace, class Scalar>
struct model_spec_of<EMBSR<ExecSpace, Scalar>> {
  using type = EmbsrSpec<embsr_presets::Full>;
};

}  // namespace embsr
