"""Probes of the fine-tuned large models (paper §6, App. F): what Figures 6, 7 and 9 are drawn from.

A *sample* is one fact of the run's dataset direction: its first forward statement "A's child
is B" (the trained mapping, A named in the prompt, B the completion) and its first reverse query
"B's parent is" (answer A). Both queries of a sample predict the first token of A:

- MDMs (paper §6.2): forward = "[M]…[M]'s child is B", the forward statement with A's span masked;
  reverse = "B's parent is [M]…[M]". The target is A's first token at the first masked position.
  A and B are tokenised in their answer form in both queries (" Anna Bell", as the model answers
  with them; ``_entity_split``), so the two queries predict the same token and hold the same key
  token for B; a sample whose entities would still differ (e.g. a description capitalised in one
  query only) is left out and counted (``excluded_samples``). ``context`` says what follows
  (docs/llm_probes.md): ``entity`` = nothing more, as the paper writes the queries (as many masks
  as A has tokens); ``sequence`` = the sequences the model sees, i.e. the forward statement's answer padded with EOS to the generation length as in
  training, and the reverse prompt followed by the generation-length masks the sampler starts from.
- ARMs ("the reverse query as a prefix"): forward = the forward prompt, predicting B's first
  token (the conditional the training supervises); reverse = the reverse prompt, predicting A's.

Every table is long format (one row per measurement) with the columns and types of ``SCHEMAS``,
checked by ``validate`` before it is written and when the figures read it:

* ``llm_attention`` (MDMs): the raw score q·k after RoPE (unscaled) from the first masked position
  to B's first token, per layer, head, sample, direction and placement. Placements make the
  toy probe's "every relative position" (paper §6.1) for real prompts: attention-masked pad
  positions inserted at the prompt/answer boundary set the distance Δ between the two tokens to
  each of ``placements`` values shared by all samples, so forward and reverse scores of the same
  (Δ1, Δ2) can be correlated over samples exactly as the toy correlates them over letters;
* ``llm_gradient_alignment``: per sample, ⟨g_fwd, g_rev⟩ and the cosine of the gradients of the
  two queries' losses −log p(target) over every trainable parameter (the LoRA adapters; a
  stand-in's base weights too), one query at a time;
* ``llm_query_probability``: per sample and direction, p(target) and its rank among all tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from revcurse.core.schemas import check_table
from revcurse.llm.batches import PromptFormat
from revcurse.llm.model.backbone import Backbone
from revcurse.llm.probes.hooks import recorded_scores

DIRECTIONS = ("forward", "reverse")
CONTEXTS = ("entity", "sequence")

# ---------------------------------------------------------------- schemas
RUN_COLUMNS = {"preset": str, "model": str, "label": str, "kind": str, "task": str, "dataset": str,
               "trained_direction": str, "seed": int, "epoch": int}
# excluded_samples: the run's samples left out because A or B would be different tokens in its two queries.
PROVENANCE_COLUMNS = {"excluded_samples": int, "config_hash": str, "train_config_hash": str, "code_version": str,
                      "model_revision": str}
SCHEMAS: dict[str, dict[str, type]] = {
    "llm_attention": {
        **RUN_COLUMNS, "fact_id": str, "direction": str, "layer": int, "head": int, "kv_head": int,
        "mask_pos": int, "b_pos": int, "delta": int, "natural_delta": int, "gap": int, "score": float,
        "head_dim": int, "rope_base": float, "context": str, **PROVENANCE_COLUMNS,
    },
    "llm_gradient_alignment": {
        **RUN_COLUMNS, "fact_id": str, "inner_product": float, "cosine": float, "grad_norm_forward": float,
        "grad_norm_reverse": float, "parameters": int, "context": str, **PROVENANCE_COLUMNS,
    },
    "llm_query_probability": {
        **RUN_COLUMNS, "fact_id": str, "direction": str, "target_id": int, "target_token": str,
        "read_pos": int, "probability": float, "rank": int, "context": str, **PROVENANCE_COLUMNS,
    },
}


def validate(frame: pd.DataFrame, probe: str) -> pd.DataFrame:
    """``frame`` checked against ``SCHEMAS[probe]`` (columns, types, no nulls, not empty)."""
    return check_table(frame, probe, SCHEMAS)


def with_run_columns(frame: pd.DataFrame, probe: str, run: dict) -> pd.DataFrame:
    """Add the run identifiers and provenance (``run`` holds both), order the columns and validate."""
    frame = frame.assign(**{k: v for k, v in run.items() if k not in frame})
    return validate(frame[list(SCHEMAS[probe])], probe)


# ---------------------------------------------------------------- queries
@dataclass(frozen=True)
class Query:
    """One tokenised query. ``boundary``: where the prompt ends (placements insert pads there)."""

    ids: tuple[int, ...]
    read_pos: int               # logits row read (``Backbone.logits`` convention)
    target_id: int
    boundary: int
    mask_pos: int = -1          # MDMs: first masked position
    b_pos: int = -1             # MDMs: first token of B

    def with_gap(self, gap: int, pad_token_id: int) -> tuple["Query", tuple[int, ...]]:
        """The query with ``gap`` pad positions at the boundary, and its padding mask."""
        ids = self.ids[: self.boundary] + (pad_token_id,) * gap + self.ids[self.boundary:]
        visible = (1,) * self.boundary + (0,) * gap + (1,) * (len(self.ids) - self.boundary)

        def moved(position: int) -> int:
            return position + gap if position >= self.boundary else position

        return replace(self, ids=ids, read_pos=moved(self.read_pos), mask_pos=moved(self.mask_pos),
                       b_pos=moved(self.b_pos), boundary=self.boundary + gap), visible


@dataclass(frozen=True)
class QueryPair:
    fact_id: str
    forward: Query
    reverse: Query

    def query(self, direction: str) -> Query:
        return self.forward if direction == "forward" else self.reverse


def _entity_split(prompt_format: PromptFormat, text: str, entity: str) -> tuple[tuple, tuple, tuple]:
    """Tokens of ``text`` before, of and after the first occurrence of ``entity`` (case-insensitive:
    descriptions are capitalised at the start of a sentence), without special tokens. The entity is
    tokenised in its *answer form* (``PromptFormat.answer_ids``: " Anna Bell" for raw prompts), so
    it has the tokens it has wherever the model answers with it; a space before it in ``text`` is
    part of that form, and an entity at the start of the text gets it too."""
    at = text.casefold().find(entity.casefold())
    if at < 0:
        raise ValueError(f"{entity!r} does not occur in {text!r}")
    before, span, after = text[:at], text[at: at + len(entity)], text[at + len(entity):]
    if prompt_format.answer_prefix.startswith(" ") and before.endswith(" "):
        before = before[:-1]
    return prompt_format.text_ids(before), prompt_format.answer_ids(span), prompt_format.text_ids(after)


def query_pair(backbone: Backbone, fact_id: str, forward, reverse, context: str,
               answer_length: int) -> QueryPair | str:
    """The two queries of one sample from its forward statement and reverse query (module
    docstring), or, for an MDM whose two queries would not hold A and B as the same tokens, why not."""
    prompt_format = backbone.prompt_format
    entity_a, entity_b = reverse.completion, forward.completion
    if backbone.spec.kind == "arm":
        prompts = [prompt_format.prompt_ids(s.prompt) for s in (forward, reverse)]
        targets = [prompt_format.answer_ids(entity_b)[0], prompt_format.answer_ids(entity_a)[0]]
        queries = [Query(p, len(p) - 1, t, len(p)) for p, t in zip(prompts, targets)]
        return QueryPair(fact_id, *queries)
    mask, prefix = backbone.mask_token_id, len(prompt_format.prefix)
    before, a_forward, after = _entity_split(prompt_format, forward.prompt, entity_a)
    b_forward = prompt_format.answer_ids(entity_b)
    before_b, b_reverse, after_b = _entity_split(prompt_format, reverse.prompt, entity_b)
    a_reverse = prompt_format.answer_ids(entity_a)
    if (a_forward, b_forward) != (a_reverse, b_reverse):
        spell = backbone.tokenizer.convert_ids_to_tokens
        which = "A" if a_forward != a_reverse else "B"
        pair = (a_forward, a_reverse) if which == "A" else (b_forward, b_reverse)
        return f"{which} is {spell(list(pair[0]))} in the forward query and {spell(list(pair[1]))} in the reverse query"
    prompt = prompt_format.wrap(before + (mask,) * len(a_forward) + after)
    answer = b_forward
    if context == "sequence":
        answer = answer + (backbone.eos_token_id,) * max(0, answer_length - len(answer))
    fwd = Query(prompt + answer, prefix + len(before), a_forward[0], len(prompt), prefix + len(before), len(prompt))
    prompt = prompt_format.wrap(before_b + b_reverse + after_b)
    masks = len(a_reverse) if context == "entity" else answer_length
    rev = Query(prompt + (mask,) * masks, len(prompt), a_reverse[0], len(prompt), len(prompt), prefix + len(before_b))
    return QueryPair(fact_id, fwd, rev)


def query_pairs(backbone: Backbone, direction, context: str, answer_length: int,
                samples: int | None) -> tuple[list[QueryPair], dict[str, str]]:
    """One pair per fact of a dataset direction (its first forward statement and reverse query,
    facts in file order), of the first ``samples`` facts (all for ``None``); and the facts of those
    left out because their two queries would not hold the same tokens for A and B, with why."""
    if context not in CONTEXTS:
        raise ValueError(f"config.yaml: llm.probes.context = {context!r}; expected one of {CONTEXTS}")
    forward, reverse = {}, {}
    for row in direction.eval_forward:
        forward.setdefault(row.fact_id, row)
    for row in direction.eval_reverse:
        reverse.setdefault(row.fact_id, row)
    facts = [fact for fact in forward if fact in reverse][:samples]
    built = {fact: query_pair(backbone, fact, forward[fact], reverse[fact], context, answer_length) for fact in facts}
    pairs = [pair for pair in built.values() if isinstance(pair, QueryPair)]
    excluded = {fact: why for fact, why in built.items() if isinstance(why, str)}
    if not pairs:
        raise ValueError(f"probes of {backbone.spec.name}: every one of the {len(facts)} samples was excluded, e.g. "
                         f"{next(iter(excluded.items()))}: no query pair holds A and B as the same tokens "
                         f"(docs/llm_probes.md)")
    return pairs, excluded


def _batch(queries: list[Query], visible: list[tuple[int, ...]], pad_token_id: int,
           device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and padding mask (padding at the end moves no position)."""
    width = max(len(q.ids) for q in queries)
    ids = torch.full((len(queries), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(queries), width), dtype=torch.long)
    for row, (query, seen) in enumerate(zip(queries, visible)):
        ids[row, : len(query.ids)] = torch.tensor(query.ids)
        mask[row, : len(seen)] = torch.tensor(seen)
    return ids.to(device), mask.to(device)


def _device(backbone: Backbone) -> torch.device:
    return next(backbone.model.parameters()).device


# ---------------------------------------------------------------- attention (Figure 6)
def rope_geometry(model: torch.nn.Module) -> tuple[int, float]:
    """(head dimension, RoPE base) of a transformers model or of LLaDA's config."""
    config = model.config                                              # peft forwards it to the base model
    if hasattr(config, "d_model"):                                     # LLaDA
        return config.d_model // config.n_heads, float(config.rope_theta)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    base = getattr(config, "rope_theta", None) or (getattr(config, "rope_parameters", None) or {})["rope_theta"]
    return int(head_dim), float(base)


def natural_delta(query: Query, direction: str) -> int:
    """Δ between the first masked position and B's first token: Δ1 forward, Δ2 reverse."""
    return query.b_pos - query.mask_pos if direction == "forward" else query.mask_pos - query.b_pos


@torch.no_grad()
def attention_scores(backbone: Backbone, pairs: list[QueryPair], placements: int, batch_size: int) -> pd.DataFrame:
    """Scores from the first masked position to B's first token at ``placements`` distances per
    direction: from the largest natural distance of the samples upwards (module docstring)."""
    if backbone.spec.kind != "mdm":
        raise ValueError(f"attention probe: {backbone.spec.name} is an ARM; it never reads a mask")
    backbone.model.eval()
    device = _device(backbone)
    frames = []
    for direction in DIRECTIONS:
        queries = [pair.query(direction) for pair in pairs]
        natural = [natural_delta(q, direction) for q in queries]
        jobs = [(index, delta) for delta in range(max(natural), max(natural) + placements)
                for index in range(len(queries))]
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start: start + batch_size]
            placed = [queries[i].with_gap(delta - natural[i], backbone.pad_token_id) for i, delta in chunk]
            moved = [query for query, _ in placed]
            ids, visible = _batch(moved, [seen for _, seen in placed], backbone.pad_token_id, device)
            with recorded_scores(backbone.model, torch.tensor([q.mask_pos for q in moved]),
                                 torch.tensor([q.b_pos for q in moved])) as recorder:
                backbone.logits(ids, visible, sequence_positions=True)   # gaps move the positions after them
            scores = torch.stack(recorder.per_layer, 1).double().numpy()                      # [rows, layers, heads]
            rows, layers, heads = scores.shape
            frames.append(pd.DataFrame({
                "fact_id": np.repeat([pairs[i].fact_id for i, _ in chunk], layers * heads),
                "direction": direction,
                "layer": np.tile(np.repeat(np.arange(layers), heads), rows),
                "head": np.tile(np.arange(heads), rows * layers),
                "mask_pos": np.repeat([q.mask_pos for q in moved], layers * heads),
                "b_pos": np.repeat([q.b_pos for q in moved], layers * heads),
                "delta": np.repeat([delta for _, delta in chunk], layers * heads),
                "natural_delta": np.repeat([natural[i] for i, _ in chunk], layers * heads),
                "gap": np.repeat([delta - natural[i] for i, delta in chunk], layers * heads),
                "score": scores.reshape(-1),
                "kv_head": np.tile(np.arange(heads) // recorder.heads_per_kv_head, rows * layers),
            }))
    head_dim, base = rope_geometry(backbone.model)
    return pd.concat(frames, ignore_index=True).assign(head_dim=head_dim, rope_base=base)


# ---------------------------------------------------------------- gradients and probabilities (Figures 7, 9)
def _query_loss(backbone: Backbone, query: Query) -> tuple[torch.Tensor, float, int]:
    """−log p(target | query), p(target) and its rank (1 = most probable) among all tokens."""
    ids = torch.tensor([query.ids], device=_device(backbone))
    logits = backbone.logits(ids, torch.ones_like(ids))[0, query.read_pos].float()
    log_probs = logits.log_softmax(-1)
    target = log_probs[query.target_id]
    rank = int((log_probs > target).sum()) + 1
    return -target, float(target.detach().exp()), rank


def _token_text(tokenizer, token_id: int) -> str:
    """The token as the tokenizer spells it ("" without a tokenizer: synthetic benchmark queries)."""
    return "" if tokenizer is None else tokenizer.convert_ids_to_tokens(token_id)


def gradient(loss: torch.Tensor, parameters: list[torch.Tensor]) -> torch.Tensor:
    """The gradient of ``loss`` over ``parameters`` as one flat float32 vector."""
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                      for g, p in zip(grads, parameters)])


def alignment(forward: torch.Tensor, reverse: torch.Tensor) -> dict[str, float]:
    """⟨g_fwd, g_rev⟩, their cosine and norms, in float64."""
    forward, reverse = forward.double(), reverse.double()
    inner, norm_forward, norm_reverse = float(forward @ reverse), float(forward.norm()), float(reverse.norm())
    return {"inner_product": inner, "cosine": inner / (norm_forward * norm_reverse),
            "grad_norm_forward": norm_forward, "grad_norm_reverse": norm_reverse}


def training_dynamics(backbone: Backbone, pairs: list[QueryPair]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per sample: the gradient alignment of its two queries and p(target) / rank of each.

    One query at a time, so memory is one forward/backward of one short sequence plus two
    gradient vectors of the trainable parameters (33.5M for LoRA r = 32 on an 8B model)."""
    backbone.model.eval()                                        # no dropout
    trainable = [p for p in backbone.model.parameters() if p.requires_grad]
    alignments, probabilities = [], []
    for pair in pairs:
        grads = {}
        for direction in DIRECTIONS:
            query = pair.query(direction)
            loss, probability, rank = _query_loss(backbone, query)
            grads[direction] = gradient(loss, trainable)
            probabilities.append({"fact_id": pair.fact_id, "direction": direction, "target_id": query.target_id,
                                  "target_token": _token_text(backbone.tokenizer, query.target_id),
                                  "read_pos": query.read_pos, "probability": probability, "rank": rank})
        alignments.append({"fact_id": pair.fact_id, **alignment(grads["forward"], grads["reverse"]),
                           "parameters": sum(p.numel() for p in trainable)})
    return pd.DataFrame(alignments), pd.DataFrame(probabilities)
