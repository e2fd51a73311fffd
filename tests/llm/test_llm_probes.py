"""Large-scale probes: hook-captured attention scores against scores recomputed from the weights,
gradient alignment, query construction, schemas, and Figures 6, 7, 9 from fixture tables."""
from itertools import product

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import transformers

from helpers.llm import load_adapted_backbone, registry_entry, tiny_standin, write_tiny_tokenizer
from revcurse.data.relational.records import Statement
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.probes.figures import FIGURES, excluded_note, llm_attention_correlation, render
from revcurse.llm.probes.hooks import capture_method, recorded_scores
from revcurse.llm.probes.measure import (SCHEMAS, QueryPair, attention_scores, natural_delta, query_pairs,
                                         rope_geometry, training_dynamics, validate, with_run_columns)

LORA = {"r": 4, "alpha": 8, "dropout": 0.0}
NAMES = [("Anna Bell", "Carl Dorn"), ("Erik Falk", "Gina Holm"), ("Gina Holm", "Anna Bell"), ("Carl Dorn", "Erik Falk")]


class Direction:
    """The two splits of a P2C dataset direction that the probes read."""

    eval_forward = [Statement(f"f{i}", "child", "a", "b", f"{a}'s child is", b) for i, (a, b) in enumerate(NAMES)]
    eval_reverse = [Statement(f"f{i}", "parent", "b", "a", f"{b}'s parent is", a) for i, (a, b) in enumerate(NAMES)]


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")


def backbone_of(spec, tokenizer_path, seed=1):
    backbone = load_adapted_backbone(spec, LORA, torch.device("cpu"), seed, tokenizer_path)
    with torch.no_grad():      # LoRA's B starts at zero: make the adapters matter
        for name, parameter in backbone.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return backbone


def gqa_standin(model: str) -> ModelSpec:
    entry = registry_entry(model)
    entry["standin"] = {**entry["standin"], "hidden_size": 32, "layers": 2, "heads": 4, "kv_heads": 2,
                        "intermediate_size": 64}
    return ModelSpec.from_config(model, entry)


def rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """RoPE written out (rotate-half convention of Llama/Qwen2/LLaDA), x: [..., T, d]."""
    d = x.shape[-1]
    angles = positions[:, None].double() * base ** (-torch.arange(0, d, 2).double() / d)
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    return x * cos + torch.cat([-x[..., d // 2:], x[..., : d // 2]], -1) * sin


# ---------------------------------------------------------------- hooks
@pytest.mark.parametrize("spec", [tiny_standin("standin_llada"), gqa_standin("standin_dream")],
                         ids=["llama", "qwen2-gqa"])
def test_hooked_scores_equal_scores_recomputed_from_the_weights(spec, tokenizer_path):
    backbone = backbone_of(spec, tokenizer_path)
    # transformers >= 5 hands q, k to the registered attention function; 4.46 (the remote-code env) calls
    # the module-level apply_rotary_pos_emb, as Dream's code does.
    new_interface = int(transformers.__version__.split(".")[0]) >= 5
    assert capture_method(backbone.model) == ("attention_interface" if new_interface else "rope_function")
    model = backbone.model.get_base_model()
    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim, base = rope_geometry(model)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (3, 9), generator=generator)
    visible = torch.ones_like(ids)
    visible[1, 4:6] = 0                                              # a placement gap
    query_pos, key_pos = torch.tensor([0, 7, 3]), torch.tensor([5, 2, 8])
    with torch.no_grad(), recorded_scores(backbone.model, query_pos, key_pos) as recorder:
        backbone.logits(ids, visible, sequence_positions=True)
        hidden = model(input_ids=ids, **backbone._bidirectional(visible), output_hidden_states=True).hidden_states
    assert len(recorder.per_layer) == 2 * config.num_hidden_layers      # both passes were recorded
    positions = torch.arange(ids.shape[1])
    for layer, block in enumerate(model.model.layers):
        with torch.no_grad():
            x = block.input_layernorm(hidden[layer])
            q = block.self_attn.q_proj(x).view(3, -1, heads, head_dim).transpose(1, 2).double()
            k = block.self_attn.k_proj(x).view(3, -1, kv_heads, head_dim).transpose(1, 2).double()
        q, k = rope(q, positions, base), rope(k, positions, base)
        for row in range(3):
            for head in range(heads):
                expected = q[row, head, query_pos[row]] @ k[row, head // (heads // kv_heads), key_pos[row]]
                assert recorder.per_layer[layer][row, head].item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)


class LLaDARotary(torch.nn.Module):
    """LLaDA's interface: ``rotary_emb(q, k)`` returns the rotated (q, k), [B, heads, T, d]."""

    def rotate_half(self, x):
        return torch.cat([-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]], -1)

    def forward(self, q, k):
        positions = torch.arange(q.shape[-2])
        return rope(q.double(), positions, 10000.0).float(), rope(k.double(), positions, 10000.0).float()


class LLaDABlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.attn_out = (torch.nn.Linear(8, 8, bias=False) for _ in range(3))
        self.rotary_emb = LLaDARotary()

    def forward(self, x):
        q, k = (p(x).view(x.shape[0], -1, 2, 4).transpose(1, 2) for p in (self.q_proj, self.k_proj))
        q, k = self.rotary_emb(q, k)
        return self.attn_out(F.scaled_dot_product_attention(q, k, k).transpose(1, 2).reshape(x.shape))


def apply_rotary_pos_emb(q, k, positions):
    """Dream's remote code calls a module-level function of this name."""
    return rope(q.double(), positions, 10000.0).float(), rope(k.double(), positions, 10000.0).float()


class DreamAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_idx = 0
        self.q_proj, self.k_proj = torch.nn.Linear(8, 8, bias=False), torch.nn.Linear(8, 8, bias=False)

    def forward(self, x):
        q, k = (p(x).view(x.shape[0], -1, 2, 4).transpose(1, 2) for p in (self.q_proj, self.k_proj))
        q, k = apply_rotary_pos_emb(q, k, torch.arange(x.shape[1]))
        return F.scaled_dot_product_attention(q, k, k)


@pytest.mark.parametrize("module, method", [(LLaDABlock, "llada_rotary"), (DreamAttention, "rope_function")])
def test_remote_code_capture_points_see_the_rotated_queries_and_keys(module, method):
    torch.manual_seed(0)
    model, x = module(), torch.randn(2, 6, 8)
    assert capture_method(model) == method
    query_pos, key_pos = torch.tensor([1, 4]), torch.tensor([5, 0])
    with torch.no_grad(), recorded_scores(model, query_pos, key_pos) as recorder:
        model(x)
    positions = torch.arange(6)
    q = rope(model.q_proj(x).view(2, 6, 2, 4).transpose(1, 2).double(), positions, 10000.0)
    k = rope(model.k_proj(x).view(2, 6, 2, 4).transpose(1, 2).double(), positions, 10000.0)
    expected = torch.stack([(q[r, :, query_pos[r]] * k[r, :, key_pos[r]]).sum(-1) for r in range(2)])
    assert len(recorder.per_layer) == 1
    assert torch.allclose(recorder.per_layer[0].double(), expected, atol=1e-5)
    assert apply_rotary_pos_emb.__name__ == "apply_rotary_pos_emb"      # the original is back


# ---------------------------------------------------------------- queries
def test_mdm_queries_hold_a_and_b_as_the_same_tokens_in_both_directions(tokenizer_path):
    backbone = backbone_of(tiny_standin("standin_llada"), tokenizer_path)
    pairs, excluded = query_pairs(backbone, Direction, "entity", 8, None)
    assert len(pairs) == len(NAMES) and excluded == {}
    tokenizer, mask = backbone.tokenizer, backbone.mask_token_id
    anna = tokenizer(" Anna Bell", add_special_tokens=False)["input_ids"]      # as the model answers with it
    carl = tokenizer(" Carl Dorn", add_special_tokens=False)["input_ids"]
    assert anna[0] != tokenizer("Anna Bell", add_special_tokens=False)["input_ids"][0]   # the two spellings differ
    forward, reverse = pairs[0].forward, pairs[0].reverse
    assert forward.ids[: len(anna)] == (mask,) * len(anna)
    assert forward.ids[forward.b_pos: forward.b_pos + len(carl)] == tuple(carl)
    assert reverse.ids[reverse.b_pos: reverse.b_pos + len(carl)] == tuple(carl)
    assert reverse.ids[reverse.mask_pos:] == (mask,) * len(anna)
    assert forward.target_id == reverse.target_id == anna[0]                     # the same target ...
    assert forward.ids[forward.b_pos] == reverse.ids[reverse.b_pos] == carl[0]     # ... and the same key
    assert natural_delta(forward, "forward") > 0 and natural_delta(reverse, "reverse") > 0
    sequence = query_pairs(backbone, Direction, "sequence", 8, None)[0][0]
    assert len(sequence.reverse.ids) == sequence.reverse.mask_pos + 8                 # the sampler's 8 masks
    assert sequence.forward.ids[-1] == backbone.eos_token_id                          # the training tail


def test_a_sample_whose_entity_is_spelled_differently_is_excluded_and_counted(tokenizer_path):
    backbone = backbone_of(tiny_standin("standin_llada"), tokenizer_path)

    class Capitalised(Direction):      # fact f1: its reverse answer capitalises A differently from the statement
        eval_reverse = [*Direction.eval_reverse[:1],
                        Statement("f1", "parent", "b", "a", "Gina Holm's parent is", "ERIK Falk"),
                        *Direction.eval_reverse[2:]]
    pairs, excluded = query_pairs(backbone, Capitalised, "entity", 8, None)
    assert [p.fact_id for p in pairs] == ["f0", "f2", "f3"] and list(excluded) == ["f1"]
    assert excluded["f1"].startswith("A is ") and "in the reverse query" in excluded["f1"]
    arm = backbone_of(tiny_standin("standin_llama"), tokenizer_path)      # ARMs predict different entities by design
    assert len(query_pairs(arm, Capitalised, "entity", 8, None)[0]) == len(NAMES)


@pytest.mark.parametrize("model", ["standin_llada", "standin_dream"])
def test_placements_share_distances_across_samples_and_hide_the_gap(model, tokenizer_path):
    backbone = backbone_of(tiny_standin(model), tokenizer_path)
    pairs = query_pairs(backbone, Direction, "entity", 8, None)[0]
    frame = attention_scores(backbone, pairs, placements=3, batch_size=5)
    for direction, rows in frame.groupby("direction"):
        largest = max(natural_delta(p.query(direction), direction) for p in pairs)
        assert sorted(rows["delta"].unique()) == [largest, largest + 1, largest + 2]
        assert (rows["delta"] == rows["natural_delta"] + rows["gap"]).all()
        assert rows.groupby("delta")["fact_id"].nunique().eq(len(pairs)).all()
    # A gap of pads is invisible: at gap 0 the score is the one of the query alone.
    closest = frame.loc[frame["direction"] == "forward", "delta"].min()
    pair = next(p for p in pairs if natural_delta(p.forward, "forward") == closest)
    alone = frame[(frame.fact_id == pair.fact_id) & (frame.direction == "forward") & (frame.gap == 0)]
    with torch.no_grad(), recorded_scores(backbone.model, torch.tensor([pair.forward.mask_pos]),
                                          torch.tensor([pair.forward.b_pos])) as recorder:
        ids = torch.tensor([pair.forward.ids])
        backbone.logits(ids, torch.ones_like(ids))
    own = torch.stack(recorder.per_layer).flatten()
    assert np.allclose(alone.sort_values(["layer", "head"])["score"], own, atol=1e-5)
    # A gap moves the positions after it, also for Dream, whose own convention counts visible tokens only.
    moved = frame[(frame.fact_id == pair.fact_id) & (frame.direction == "forward") & (frame.gap == 2)]
    assert not np.allclose(moved.sort_values(["layer", "head"])["score"], own, atol=1e-3)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("model", ["standin_llada", "standin_llama"])
def test_gradient_cosine_of_identical_queries_is_one(model, tokenizer_path):
    backbone = backbone_of(tiny_standin(model), tokenizer_path)
    pair = query_pairs(backbone, Direction, "entity", 8, 1)[0][0]
    same = QueryPair(pair.fact_id, pair.reverse, pair.reverse)
    alignment, probability = training_dynamics(backbone, [same, pair])
    assert alignment["cosine"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert alignment["inner_product"].iloc[0] == pytest.approx(alignment["grad_norm_forward"].iloc[0] ** 2, rel=1e-5)
    assert alignment["parameters"].iloc[0] == sum(p.numel() for p in backbone.model.parameters() if p.requires_grad)
    assert abs(alignment["cosine"].iloc[1]) < 1 - 1e-3
    assert probability["probability"].between(0, 1).all() and (probability["rank"] >= 1).all()


def test_gradient_covers_the_adapters_only_when_the_base_is_frozen(tokenizer_path):
    backbone = backbone_of(tiny_standin("standin_llada", train_base=False), tokenizer_path)
    pair = query_pairs(backbone, Direction, "entity", 8, 1)[0][0]
    alignment, _ = training_dynamics(backbone, [pair])
    adapters = sum(p.numel() for n, p in backbone.model.named_parameters() if "lora_" in n)
    assert alignment["parameters"].iloc[0] == adapters


# ---------------------------------------------------------------- schemas
RUN = {"preset": "test", "model": "standin_llada", "label": "LLaDA stand-in", "kind": "mdm", "task": "P2C",
       "dataset": "parent_child", "trained_direction": "p2c", "seed": 1, "context": "entity", "excluded_samples": 0,
       "config_hash": "c", "train_config_hash": "t", "code_version": "v", "model_revision": "stand-in"}


def test_probe_tables_follow_their_schemas(tokenizer_path):
    backbone = backbone_of(tiny_standin("standin_llada"), tokenizer_path)
    pairs = query_pairs(backbone, Direction, "entity", 8, None)[0]
    alignment, probability = training_dynamics(backbone, pairs)
    tables = {"llm_attention": attention_scores(backbone, pairs, 2, 8), "llm_gradient_alignment": alignment,
              "llm_query_probability": probability}
    for name, frame in tables.items():
        table = with_run_columns(frame.assign(epoch=5), name, RUN)
        assert list(table.columns) == list(SCHEMAS[name])
    with pytest.raises(ValueError, match="columns"):
        validate(table.drop(columns="rank"), "llm_query_probability")
    with pytest.raises(ValueError, match="wrong column types"):
        validate(table.assign(rank=table["rank"].astype(float)), "llm_query_probability")
    with pytest.raises(ValueError, match="null values"):
        validate(table.assign(probability=np.nan), "llm_query_probability")
    with pytest.raises(ValueError, match="no rows"):
        validate(table.iloc[:0], "llm_query_probability")


# ---------------------------------------------------------------- figures from fixtures
MODELS = {"llada": ("LLaDA 8B", "mdm"), "llama": ("LLaMA-3.1 8B", "arm")}
SEEDS, EPOCHS, SAMPLES, DELTAS = (1, 42), (10, 20), 6, (5, 6)


def fixture_tables() -> dict[str, pd.DataFrame]:
    """Probe tables of two models (one MDM), two seeds and checkpoints, six samples, two placements."""
    rng = np.random.default_rng(0)
    rows = {name: [] for name in SCHEMAS}
    for (model, (label, kind)), seed, epoch, sample in product(MODELS.items(), SEEDS, EPOCHS, range(SAMPLES)):
        run = {**RUN, "model": model, "label": label, "kind": kind, "seed": seed, "epoch": epoch,
               "fact_id": f"f{sample}"}
        rows["llm_gradient_alignment"].append({**run, "inner_product": rng.normal(1), "cosine": rng.uniform(0, 1),
                                               "grad_norm_forward": 1.0, "grad_norm_reverse": 1.0, "parameters": 10})
        for direction in ("forward", "reverse"):
            rows["llm_query_probability"].append({**run, "direction": direction, "target_id": 7, "target_token": "x",
                                                  "read_pos": 3, "probability": rng.uniform(0.01, 1),
                                                  "rank": int(rng.integers(1, 50))})
            for delta, layer, head in product(DELTAS if kind == "mdm" else (), range(2), range(2)):
                rows["llm_attention"].append({
                    **run, "direction": direction, "layer": layer, "head": head, "kv_head": head, "mask_pos": 0,
                    "b_pos": delta, "delta": delta, "natural_delta": 5, "gap": delta - 5,
                    "score": sample + rng.normal(0, 0.5), "head_dim": 16, "rope_base": 10000.0})
    return {name: validate(pd.DataFrame(table)[list(SCHEMAS[name])], name) for name, table in rows.items()}


def test_correlation_pairs_forward_and_reverse_placements_over_samples():
    attention = fixture_tables()["llm_attention"]
    correlation = llm_attention_correlation(attention, "per_pair")
    head = attention[(attention["epoch"] == 20) & (attention["layer"] == 1) & (attention["head"] == 0)]

    def corr(seed: int, delta_forward: int, delta_reverse: int) -> float:
        """Pearson over samples of one (Δ1, Δ2) pair of one seed."""
        def scores(direction, delta):
            rows = head[(head["seed"] == seed) & (head["direction"] == direction) & (head["delta"] == delta)]
            return rows.sort_values("fact_id")["score"]
        return np.corrcoef(scores("forward", delta_forward), scores("reverse", delta_reverse))[0, 1]

    bin_11 = correlation[(correlation["layer"] == 1) & (correlation["head"] == 0) & (correlation["distance_sum"] == 11)]
    per_seed = [(corr(seed, 5, 6) + corr(seed, 6, 5)) / 2 for seed in SEEDS]      # the bin's two pairs
    assert len(bin_11) == 1 and bin_11["epoch"].iloc[0] == 20 and bin_11["seeds"].iloc[0] == 2
    assert bin_11["correlation"].iloc[0] == pytest.approx(np.mean(per_seed))


def test_figures_count_the_excluded_samples_of_every_run():
    tables = fixture_tables()
    probability = tables["llm_query_probability"]
    probability.loc[(probability["model"] == "llada") & (probability["seed"] == 42), "excluded_samples"] = 3
    probability.loc[(probability["model"] == "llama") & (probability["seed"] == 1), "excluded_samples"] = 1
    assert excluded_note(probability).endswith(": 4")          # per run, not per row
    assert excluded_note(tables["llm_attention"]).endswith(": 0")


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_render_from_fixture_tables(name, tmp_path):
    stamp = {"figure": name, "preset": "test", "config_hash": "c", "code_version": "v"}
    paths = [tmp_path / f"{name}.{ext}" for ext in ("png", "pdf", "csv")]
    table = render(name, fixture_tables(), {"correlation_pooling": "per_pair"}, *paths, stamp,
                   {"torch": torch.__version__})
    assert paths[0].stat().st_size > 10_000 and paths[1].exists()
    assert not table.empty and (pd.read_csv(paths[2])["preset"] == "test").all()
    if name == "fig9":
        assert set(table["model"]) == set(MODELS) and (table["epoch"] == 20).all()
