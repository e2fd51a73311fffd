"""One configurable toy Transformer for every toy experiment.

The paper's two models are two settings of ``ModelConfig``:

* MDM, a one-layer RADD-style encoder (a DiT block without time conditioning):
  RoPE on q and k, bidirectional attention, masked-diffusion objective;
* ARM, a one-layer GPT-2: learned absolute positions, causal attention, next-token objective.

A third objective, ``fixed_rate_masking`` (BERT-style: every position masked with the
fixed probability ``fixed_mask_rate``), exists for the ablation grid (revcurse.ablation).

Position encoding, attention, objective, depth, width and heads are fields, so the
ablation grid sweeps them without new model code.

Every parameter carries a leading *ensemble* dimension E: ``E`` independent models
of the same shape run as one set of batched matrix products. A single run is E = 1;
stacking the seeds of a grid cell makes the tiny model's training step launch-bound
cost shared. Members never mix: member e reads only its own inputs and weights,
and draws its dropout masks from its own generator, so a member trained inside a
stack ends with the same weights as when trained alone.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

POS_ENCODINGS = ("rope", "learned", "none")
ATTENTIONS = ("bidirectional", "causal")
OBJECTIVES = ("masked_diffusion", "fixed_rate_masking", "next_token")
INITS = ("gpt2", "radd", "radd_normal_embedding", "pytorch")
LOSS_REDUCTIONS = ("sum", "mean")
MASK_RATE_SAMPLERS = ("stratified", "iid")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    seq_len: int
    pos_encoding: str = "rope"
    attention: str = "bidirectional"
    objective: str = "masked_diffusion"
    n_layers: int = 1
    d_model: int = 256
    n_heads: int = 1
    mlp_ratio: int = 4          # 0: attention-only blocks
    dropout: float = 0.02
    rope_base: float = 10000.0
    # Weight initialisation (ToyTransformer.reset_parameters; docs/toy.md, "Choices that move the number").
    init: str = "gpt2"
    # The fields below default to what the project's models were before they existed, so a checkpoint
    # written then loads as what it was trained with; config.yaml sets RADD's and GPT-2's values.
    # Trainable biases on q, k, v and the attention output (RADD's attention has none; GPT-2's has them).
    attention_bias: bool = True
    # Dropout on the embeddings as well as on the residual branches (GPT-2 does; RADD does not).
    embedding_dropout: bool = True
    # Output layer = the token embedding, transposed, without bias (GPT-2's tied LM head).
    tied_head: bool = False
    # The loss over positions: 'sum' (RADD's t_DCE_loss: summed over positions, averaged over the
    # batch) or 'mean' (divided by the number of predicted positions, GPT-2's next-token loss).
    loss_reduction: str = "mean"
    # Masked diffusion's per-sequence masking rate t: 'stratified' (RADD's Batch_Uniform_Sampler
    # 'vdm': one uniform draw u, t_i = (u + i/B) mod 1 over the batch) or 'iid' (B uniform draws).
    mask_rate_sampler: str = "iid"
    # Probability that a position is masked; objective 'fixed_rate_masking' only.
    fixed_mask_rate: float = 0.15
    # Token that is never a prediction target (the mask token); its logit is -inf.
    never_predict: int | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("pos_encoding", self.pos_encoding, POS_ENCODINGS),
            ("attention", self.attention, ATTENTIONS),
            ("objective", self.objective, OBJECTIVES),
            ("init", self.init, INITS),
            ("loss_reduction", self.loss_reduction, LOSS_REDUCTIONS),
            ("mask_rate_sampler", self.mask_rate_sampler, MASK_RATE_SAMPLERS),
        ):
            if value not in allowed:
                raise ValueError(f"ModelConfig.{name}={value!r}; expected one of {allowed}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.pos_encoding == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"ModelConfig: RoPE needs an even head dimension; d_model={self.d_model} / "
                             f"n_heads={self.n_heads} is {self.d_model // self.n_heads}")
        if not 0.0 < self.fixed_mask_rate <= 1.0:
            raise ValueError(f"ModelConfig: fixed_mask_rate={self.fixed_mask_rate} is not in (0, 1]")
        if self.objective == "next_token" and self.attention != "causal":
            # A bidirectional next-token model sees the token it must predict.
            raise ValueError("ModelConfig: objective 'next_token' requires attention 'causal'")

    @property
    def reads_mask(self) -> bool:
        """Whether the model is trained to fill in [M] (both masking objectives), rather than the next token."""
        return self.objective != "next_token"

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- stacked layers
class StackedLinear(nn.Module):
    """E independent ``x @ W + b`` as one batched product."""

    def __init__(self, ensemble: int, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(ensemble, d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # x: [E, ..., d_in]
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        if self.bias is None:
            out = torch.bmm(flat, self.weight)
        else:
            out = torch.baddbmm(self.bias[:, None, :], flat, self.weight)
        return out.reshape(*x.shape[:-1], out.shape[-1])


class StackedLayerNorm(nn.Module):
    def __init__(self, ensemble: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ensemble, dim))
        self.bias = nn.Parameter(torch.zeros(ensemble, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # x: [E, B, T, d]
        normed = F.layer_norm(x, x.shape[-1:])
        return normed * self.weight[:, None, None, :] + self.bias[:, None, None, :]


def member_dropout(x: torch.Tensor, p: float, rng: Sequence[torch.Generator] | None) -> torch.Tensor:
    """Dropout whose mask for member e comes from ``rng[e]`` only (see module docstring).

    ``bernoulli_`` draws the keep mask directly in x's dtype: one pass, and on the CPU a
    vectorised generator, where ``rand() >= p`` took a float draw, a compare and a cast.
    """
    if rng is None or p == 0.0:
        return x
    keep = torch.empty_like(x)
    for member, g in zip(keep, rng):
        member.bernoulli_(1.0 - p, generator=g)
    return x * keep * (1.0 / (1.0 - p))


# ---------------------------------------------------------------- RoPE
def rope_tables(length: int, head_dim: int, base: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of angle pos·θ_i, θ_i = base^(−2i/head_dim), laid out for ``rotate_half``."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)
    angles = torch.arange(length, dtype=torch.float64, device=device)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)               # pairs (i, i + head_dim/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate q or k ([..., T, head_dim]) by its position, so q_i·k_j depends on j − i only."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


# ---------------------------------------------------------------- blocks
def attention_softmax(q: torch.Tensor, k: torch.Tensor, causal: bool) -> torch.Tensor:
    """softmax(q·kᵀ/√d) over keys, in fp32 whatever q's dtype, [..., T_q, T_k].

    Written out rather than ``scaled_dot_product_attention``: at the toy's T ≤ 40 the CPU
    SDPA kernels took about twice as long as these two products (benchmarks/toy_speed.py).
    """
    scores = (q @ k.transpose(-1, -2)).float() * q.shape[-1] ** -0.5
    if causal:
        T = q.shape[-2]
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return scores.softmax(-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, ensemble: int):
        super().__init__()
        self.cfg = cfg
        self.qkv = StackedLinear(ensemble, cfg.d_model, 3 * cfg.d_model, cfg.attention_bias)   # fused, as in RADD/GPT-2
        self.out = StackedLinear(ensemble, cfg.d_model, cfg.d_model, cfg.attention_bias)

    def queries_keys_values(self, x: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k (after RoPE) and v, each [E, B, heads, T, head_dim]."""
        E, B, T, _ = x.shape
        qkv = self.qkv(x).view(E, B, T, 3, self.cfg.n_heads, self.cfg.head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)
        if rope is not None:
            cos, sin = (table[:T] for table in rope)       # next-token inputs are shorter than seq_len
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def forward(self, x: torch.Tensor, rope) -> torch.Tensor:
        E, B, T, D = x.shape
        q, k, v = (t.flatten(0, 1) for t in self.queries_keys_values(x, rope))
        y = attention_softmax(q, k, self.cfg.attention == "causal").to(v.dtype) @ v
        return self.out(y.transpose(1, 2).reshape(E, B, T, D))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, ensemble: int):
        super().__init__()
        hidden = cfg.mlp_ratio * cfg.d_model
        self.up = StackedLinear(ensemble, cfg.d_model, hidden)
        self.down = StackedLinear(ensemble, hidden, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: ModelConfig, ensemble: int):
        super().__init__()
        self.cfg = cfg
        self.ln_attn = StackedLayerNorm(ensemble, cfg.d_model)
        self.attn = Attention(cfg, ensemble)
        if cfg.mlp_ratio > 0:
            self.ln_mlp = StackedLayerNorm(ensemble, cfg.d_model)
            self.mlp = MLP(cfg, ensemble)

    def forward(self, x, rope, rng):
        x = x + member_dropout(self.attn(self.ln_attn(x), rope), self.cfg.dropout, rng)
        if self.cfg.mlp_ratio > 0:
            x = x + member_dropout(self.mlp(self.ln_mlp(x)), self.cfg.dropout, rng)
        return x


class ToyTransformer(nn.Module):
    """Token ids [E, B, T] → logits [E, B, T, vocab]."""

    def __init__(self, cfg: ModelConfig, ensemble: int = 1, init_rng: Sequence[torch.Generator] | None = None):
        super().__init__()
        self.cfg = cfg
        self.ensemble = ensemble
        self.tok_emb = nn.Parameter(torch.empty(ensemble, cfg.vocab_size, cfg.d_model))
        if cfg.pos_encoding == "learned":
            self.pos_emb = nn.Parameter(torch.empty(ensemble, cfg.seq_len, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg, ensemble) for _ in range(cfg.n_layers))
        self.ln_out = StackedLayerNorm(ensemble, cfg.d_model)
        if not cfg.tied_head:
            self.head = StackedLinear(ensemble, cfg.d_model, cfg.vocab_size)
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(cfg.seq_len, cfg.head_dim, cfg.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        suppressed = torch.zeros(cfg.vocab_size, dtype=torch.bool)
        if cfg.never_predict is not None:
            suppressed[cfg.never_predict] = True
        self.register_buffer("suppressed", suppressed, persistent=False)
        self.reset_parameters(init_rng or [torch.Generator().manual_seed(0) for _ in range(ensemble)])

    @torch.no_grad()
    def reset_parameters(self, init_rng: Sequence[torch.Generator]) -> None:
        """Initialise every member, member e drawn from ``init_rng[e]`` alone, by ``cfg.init``:

        * ``gpt2``: Normal(0, 0.02) weights and embeddings, residual output projections scaled by
          1/sqrt(2·n_layers), zero biases;
        * ``radd``: as RADD's code (``model/transformer.py``): embeddings kaiming-uniform
          (±1/sqrt(d_model)), linear weights and MLP biases PyTorch's default (±1/sqrt(fan_in)),
          attention biases 0 (RADD's attention has none), the output layer zero, and LayerNorm
          biases at 1 (RADD's ``LayerNormWot`` starts its bias at ones, unlike SEDD's bias-free one);
        * ``radd_normal_embedding``: ``radd`` with the token embedding Normal(0, 1), nn.Embedding's
          default, as RADD's would be had it not re-initialised it;
        * ``pytorch``: PyTorch's defaults: nn.Embedding's Normal(0, 1), nn.Linear's ±1/sqrt(fan_in)
          for weights and biases.

        LayerNorm gains start at 1 in all of them, and biases at 0 except under the two ``radd``.
        """
        if len(init_rng) != self.ensemble:
            raise ValueError(f"need {self.ensemble} init generators, got {len(init_rng)}")
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        radd = self.cfg.init in ("radd", "radd_normal_embedding")
        for name, param in self.named_parameters():
            is_bias = name.endswith("bias")
            if "ln_" in name:
                param.fill_(1.0 if not is_bias or radd else 0.0)
                continue
            layer = name.rsplit(".", 1)[0]
            fan_in = self.get_parameter(f"{layer}.weight").shape[1] if "." in name else self.cfg.d_model
            if self.cfg.init == "gpt2":
                std = residual_std if name.endswith(("attn.out.weight", "mlp.down.weight")) else 0.02
                kind, scale = ("zero", 0.0) if is_bias else ("normal", std)
            elif radd and (layer == "head" or (is_bias and ".attn." in name)):
                kind, scale = "zero", 0.0
            elif (name in ("tok_emb", "pos_emb") and self.cfg.init == "pytorch"
                  or name == "tok_emb" and self.cfg.init == "radd_normal_embedding"):
                kind, scale = "normal", 1.0
            else:                               # PyTorch's nn.Linear default; SEDD's kaiming-uniform embedding
                kind, scale = "uniform", fan_in ** -0.5
            for member, rng in zip(param, init_rng):
                if kind == "zero":
                    member.zero_()
                elif kind == "normal":
                    member.normal_(0.0, scale, generator=rng)
                else:
                    member.uniform_(-scale, scale, generator=rng)

    def rope(self):
        return (self.rope_cos, self.rope_sin) if self.cfg.pos_encoding == "rope" else None

    def embed(self, tokens: torch.Tensor, rng=None) -> torch.Tensor:
        E, B, T = tokens.shape
        # One lookup in the members' tables laid end to end: F.embedding's backward is a
        # dense scatter-add, several times faster than advanced indexing's index_put.
        offsets = torch.arange(E, device=tokens.device)[:, None, None] * self.cfg.vocab_size
        x = F.embedding(tokens + offsets, self.tok_emb.flatten(0, 1))
        if self.cfg.pos_encoding == "learned":
            x = x + self.pos_emb[:, None, :T, :]
        return member_dropout(x, self.cfg.dropout, rng) if self.cfg.embedding_dropout else x

    def output_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [E, B, T, vocab] of the final LayerNorm's output x, by the head or the tied embedding."""
        if not self.cfg.tied_head:
            return self.head(x)
        E, B, T, D = x.shape
        return torch.bmm(x.reshape(E, B * T, D), self.tok_emb.transpose(1, 2)).view(E, B, T, -1)

    def forward(self, tokens: torch.Tensor, rng: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """``rng`` (one generator per member) switches dropout on; None means no dropout."""
        if tokens.dim() != 3 or tokens.shape[0] != self.ensemble:
            raise ValueError(f"tokens must be [E={self.ensemble}, B, T], got {tuple(tokens.shape)}")
        x = self.embed(tokens, rng)
        rope = self.rope()
        for block in self.blocks:
            x = block(x, rope, rng)
        logits = self.output_logits(self.ln_out(x))
        return logits.masked_fill(self.suppressed, float("-inf"))


def member_state(state: dict[str, torch.Tensor], member: int) -> dict[str, torch.Tensor]:
    """The weights of one member of a stacked state dict, as an E = 1 state dict."""
    return {name: tensor[member : member + 1].clone() for name, tensor in state.items()}
