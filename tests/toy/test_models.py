import pytest
import torch

from revcurse.data.toy import MASK_ID
from revcurse.toy.model import INITS, ToyTransformer, apply_rope, member_state, rope_tables


def test_rope_score_depends_only_on_relative_offset():
    torch.manual_seed(0)
    head_dim, length = 16, 12
    cos, sin = rope_tables(length, head_dim, 10000.0)
    q, k = torch.randn(head_dim), torch.randn(head_dim)
    rq = apply_rope(q.expand(length, head_dim), cos, sin)
    rk = apply_rope(k.expand(length, head_dim), cos, sin)
    scores = rq @ rk.T                      # scores[i, j] = q_i · k_j with q, k at positions i, j
    for offset in range(-length + 1, length):
        diagonal = torch.diagonal(scores, offset)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-5)
    assert not torch.allclose(torch.diagonal(scores, 1)[0], torch.diagonal(scores, 3)[0])


def _logits_change(model, position):
    """For each output position: does it change when only ``position`` of the input changes?"""
    torch.manual_seed(1)
    tokens = torch.randint(0, 53, (1, 4, model.cfg.seq_len))
    altered = tokens.clone()
    altered[..., position] = (altered[..., position] + 7) % 53
    diff = (model(tokens).softmax(-1) - model(altered).softmax(-1)).abs().amax(dim=(0, 1, 3))
    return diff > 1e-6


def test_arm_output_ignores_later_tokens(tiny_cfg):
    model = ToyTransformer(tiny_cfg(attention="causal", pos_encoding="learned", objective="next_token")).eval()
    changed = _logits_change(model, position=3)
    assert not changed[:3].any() and changed[3:].all()


def test_mdm_output_depends_on_later_tokens(tiny_cfg):
    model = ToyTransformer(tiny_cfg()).eval()
    assert _logits_change(model, position=3).all()


def test_mask_token_is_never_predicted(tiny_cfg):
    model = ToyTransformer(tiny_cfg()).eval()
    probs = model(torch.zeros(1, 2, 6, dtype=torch.long)).softmax(-1)
    assert (probs[..., MASK_ID] == 0).all()


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("faithful", [False, True])
def test_stacked_members_equal_solo_models(tiny_cfg, init, faithful):
    cfg = tiny_cfg(init=init, **(dict(attention_bias=False, tied_head=True) if faithful else {}))
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]
    stack = ToyTransformer(cfg, ensemble=3, init_rng=gens([5, 6, 7])).eval()
    solo = ToyTransformer(cfg, ensemble=1, init_rng=gens([6])).eval()
    for name, tensor in member_state(stack.state_dict(), 1).items():
        assert torch.equal(tensor, solo.state_dict()[name]), name
    tokens = torch.randint(0, 53, (3, 4, 6))
    assert torch.allclose(stack(tokens)[1], solo(tokens[1:2])[0], atol=1e-6)


def test_initialisations_follow_their_recipes(tiny_cfg):
    """gpt2: N(0, 0.02) and zero biases; radd: as RADD's code (zero output layer and attention biases,
    LayerNorm biases at 1, ±1/sqrt(fan_in) elsewhere); pytorch: N(0, 1) embeddings."""
    made = {init: dict(ToyTransformer(tiny_cfg(init=init, d_model=64)).named_parameters())
            for init in ("gpt2", "radd", "pytorch")}
    gpt2, radd, pytorch = made["gpt2"], made["radd"], made["pytorch"]
    assert abs(gpt2["blocks.0.mlp.up.weight"].std() - 0.02) < 0.002 and not gpt2["blocks.0.mlp.up.bias"].any()
    assert abs(gpt2["tok_emb"].std() - 0.02) < 0.004
    assert not radd["head.weight"].any() and not radd["head.bias"].any()
    up, down = radd["blocks.0.mlp.up.weight"], radd["blocks.0.mlp.down.weight"]   # fan_in 64 and 256
    assert 0.11 < up.abs().max() <= 64 ** -0.5 and 0.05 < down.abs().max() <= 256 ** -0.5
    assert radd["blocks.0.mlp.up.bias"].abs().max() > 0.1
    assert radd["tok_emb"].abs().max() <= 64 ** -0.5
    assert abs(pytorch["tok_emb"].std() - 1.0) < 0.1 and pytorch["head.weight"].abs().max() > 0.1
    assert not radd["blocks.0.attn.qkv.bias"].any() and not radd["blocks.0.attn.out.bias"].any()
    for init in made:   # LayerNorm: unit gain; bias 1 under radd (RADD's LayerNormWot), else 0
        for ln in ("ln_out", "blocks.0.ln_attn", "blocks.0.ln_mlp"):
            assert (made[init][f"{ln}.weight"] == 1).all()
            assert (made[init][f"{ln}.bias"] == (1.0 if init == "radd" else 0.0)).all(), (init, ln)


def test_initialisations_on_the_faithful_architecture(tiny_cfg):
    """Without attention biases: radd_normal_embedding is radd but for an N(0, 1) token embedding;
    pytorch draws every linear bias ±1/sqrt(fan_in) and N(0, 1) embeddings."""
    make = lambda init: dict(ToyTransformer(tiny_cfg(init=init, d_model=64, attention_bias=False)).named_parameters())
    radd, normal, pytorch = make("radd"), make("radd_normal_embedding"), make("pytorch")
    assert "blocks.0.attn.qkv.bias" not in radd and "blocks.0.attn.out.bias" not in pytorch
    assert abs(normal["tok_emb"].std() - 1.0) < 0.05 and abs(normal["tok_emb"].mean()) < 0.05
    assert radd["tok_emb"].abs().max() <= 64 ** -0.5
    for made in (radd, normal):
        assert not made["head.weight"].any() and (made["ln_out.bias"] == 1).all()
        assert 0.11 < made["blocks.0.attn.qkv.weight"].abs().max() <= 64 ** -0.5
    assert abs(pytorch["tok_emb"].std() - 1.0) < 0.05
    assert 0.11 < pytorch["head.bias"].abs().max() <= 64 ** -0.5 and (pytorch["ln_out.bias"] == 0).all()


def test_attention_biases_and_embedding_dropout_are_options(tiny_cfg):
    names = lambda **f: {n for n, _ in ToyTransformer(tiny_cfg(**f)).named_parameters()}
    assert {"blocks.0.attn.qkv.bias", "blocks.0.attn.out.bias"} <= names(attention_bias=True)
    assert not {n for n in names(attention_bias=False) if ".attn." in n and n.endswith("bias")}
    tokens = torch.randint(0, 53, (1, 64, 6))
    for embedding_dropout in (False, True):
        model = ToyTransformer(tiny_cfg(dropout=0.5, embedding_dropout=embedding_dropout))
        embedded = model.embed(tokens, [torch.Generator().manual_seed(0)])
        assert torch.equal(embedded, model.embed(tokens)) != embedding_dropout


def test_tied_head_is_the_token_embedding_transposed(tiny_cfg):
    """GPT-2's LM head: logits = LN(h) @ Eᵀ with no bias and no weight of its own."""
    model = ToyTransformer(tiny_cfg(attention="causal", pos_encoding="learned", objective="next_token",
                                    tied_head=True, never_predict=None)).eval()
    assert not any(name.startswith("head") for name, _ in model.named_parameters())
    tokens = torch.randint(0, 53, (1, 3, 6))
    hidden = model.ln_out(model.blocks[0](model.embed(tokens), model.rope(), None))
    expected = torch.einsum("ebtd,evd->ebtv", hidden, model.tok_emb)
    assert torch.allclose(model(tokens), expected, atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (dict(objective="next_token", attention="bidirectional"), "requires attention 'causal'"),
    (dict(pos_encoding="alibi"), "pos_encoding"),
    (dict(init="xavier"), "init"),
    (dict(loss_reduction="max"), "loss_reduction"),
    (dict(mask_rate_sampler="sobol"), "mask_rate_sampler"),
    (dict(d_model=15, n_heads=2), "divisible"),
])
def test_invalid_model_configs_are_rejected(tiny_cfg, bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_cfg(**bad)
