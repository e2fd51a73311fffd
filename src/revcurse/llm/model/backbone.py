"""One model with its tokenizer and the calling conventions of its family.

Everything that differs between LLaDA, Dream, the ARMs and the stand-ins is here, so the
objectives and samplers see one interface: ``logits(input_ids, padding_mask)``.

- ARMs: the usual causal call; ``logits[:, i]`` predicts token ``i + 1``.
- MDMs: bidirectional attention over the non-padding tokens; ``logits[:, i]`` predicts token
  ``i``. LLaDA builds its bidirectional bias from a 2-D padding mask (``attention_mask:
  padding_2d``); Dream and the stand-ins take a ready 4-D additive mask (``additive_4d``), which
  transformers passes through unchanged in every release the project runs on. Dream's head
  predicts the *next* token as in its AR parent Qwen2.5, so its logits are shifted right by one
  position (``logits_shift``), exactly as Dream's own sampler does.
- Positions (``position_ids``): ``index`` (LLaDA, the ARMs' training): the sequence index, the
  model's default; ``visible`` (Dream): Dream's sampler counts the visible tokens, so a
  left-padded row's positions restart at 0 on its first real token (``visible_position_ids``).

Every MDM is checked when it is loaded, in its own dtype (``check_padding_is_ignored``): a row's
logits must not depend on what its padding holds, or batched decoding, stacked training rows and
the probes' placement gaps would see the padding (LLaDA's older modeling file ignores the mask);
and a padded row must still attend both ways (a mask form the model turns causal would not).
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import torch

from revcurse.core.config import derive_seed
from revcurse.llm.batches import PromptFormat
from revcurse.llm.model.lora import attach_lora, trainable_state
from revcurse.llm.model.registry import STANDIN_REVISION, ModelSpec, resolve_weights, weights_revision
from revcurse.llm.model.stacked_lora import stack_adapters
from revcurse.llm.model.standins import build_standin
from revcurse.llm.model.tokenizer import load_standin_tokenizer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PADDING_CHECK_TEXT = "Anna Bell's child is Carl Dorn"   # any text: the check compares a row with itself
PADDING_CHECK_GAP = 5                                   # padding positions in front of it
PADDING_TOLERANCE_UNITS = 4                             # padding_tolerance: between rounding and a fault
PADDING_TOLERANCE_FLOOR = 1e-5                          # relative; float32's epsilon is far below its rounding


class PaddingMaskError(ValueError):
    """An MDM's logits depend on what its padding holds: it does not apply the padding mask."""


@dataclass
class Backbone:
    spec: ModelSpec
    model: torch.nn.Module           # the transformers model: bare, wrapped by peft, or with stacked adapters
    tokenizer: object
    pad_token_id: int
    eos_token_id: int                # appended after every completion
    stop_token_ids: frozenset[int]   # any of them ends a generated answer
    mask_token_id: int | None        # MDMs only
    revision: str = STANDIN_REVISION # the model revision every output records (registry.weights_revision)

    @cached_property
    def prompt_format(self) -> PromptFormat:
        """How this model's prompts and answers are tokenised (``batches.PromptFormat``)."""
        return PromptFormat.of(self.tokenizer, self.spec.chat_template)

    def logits(self, input_ids: torch.Tensor, padding_mask: torch.Tensor,
               positions: torch.Tensor | None = None, *, sequence_positions: bool = False) -> torch.Tensor:
        """(B, L, V) logits; MDMs, given (B, m) ``positions``: (B, m, V), the logits predicting the
        tokens at those positions, with the LM head run on those positions' hidden states alone
        (the diffusion samplers need no others, and the head is the largest layer).
        ``sequence_positions``: positions from the sequence index whatever the model's convention
        (the probes' placement gaps must move the positions after them)."""
        if self.spec.kind == "arm":
            return self.model(input_ids=input_ids, attention_mask=padding_mask).logits
        inputs = {"input_ids": input_ids, **self._bidirectional(padding_mask)}
        if self.spec.position_ids == "visible":
            inputs["position_ids"] = (torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
                                      if sequence_positions else visible_position_ids(padding_mask))
        if positions is not None:
            # Dream's position i-1 predicts token i (positions are answer tokens, never column 0).
            head_positions = positions - 1 if self.spec.logits_shift else positions
            with _lm_head_only_at(self.model, head_positions):
                return self.model(**inputs).logits
        logits = self.model(**inputs).logits
        if self.spec.logits_shift:
            # Position i-1 predicts token i; position 0 has no predecessor and keeps its own row
            # (it is always a prompt or padding token, never predicted).
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits

    def _bidirectional(self, padding_mask: torch.Tensor) -> dict:
        if self.spec.attention_mask == "padding_2d":
            return {"attention_mask": padding_mask}
        dtype = next(self.model.parameters()).dtype
        blocked = ~padding_mask.bool()[:, None, None, :].expand(-1, 1, padding_mask.shape[1], -1)
        return {"attention_mask": torch.zeros(blocked.shape, dtype=dtype, device=padding_mask.device)
                .masked_fill(blocked, torch.finfo(dtype).min)}


def visible_position_ids(padding_mask: torch.Tensor) -> torch.Tensor:
    """Dream's position ids (its sampler's ``tok_idx``): the number of visible tokens before each
    one, so a left-padded row restarts at 0 on its first real token; padding gets 1 (it is masked
    out, so its position changes nothing)."""
    positions = padding_mask.long().cumsum(-1) - 1
    return positions.masked_fill(padding_mask == 0, 1)


@dataclass(frozen=True)
class PaddingCheck:
    """What ``check_padding_is_ignored`` measured, in logits of the real tokens."""
    content: float      # largest change when only what the padding holds changes (0 when it is masked)
    alone: float        # largest difference between the padded row and the row alone (rounding only)
    reach: float        # change of the first real token's logits when the last token changes (0 if causal)
    tolerance: float    # PADDING_TOLERANCE_UNITS rounding units of the model's dtype at this logit scale


def measure_padding(backbone: Backbone) -> PaddingCheck:
    """Rows of the same tokens behind ``PADDING_CHECK_GAP`` left padding positions, all with the
    same padding mask (one's padding the pad token, one's other tokens, one with its last token
    changed) and the row alone, run in the model's own dtype."""
    tokens = list(backbone.prompt_format.answer_ids(PADDING_CHECK_TEXT)) + [backbone.mask_token_id] * 3
    gap = PADDING_CHECK_GAP
    filler = tokens[0] if tokens[0] != backbone.pad_token_id else tokens[1]
    device = next(backbone.model.parameters()).device
    ids = torch.tensor([[backbone.pad_token_id] * gap + tokens, [filler] * gap + tokens,
                        [backbone.pad_token_id] * gap + tokens[:-1] + [filler]], device=device)
    mask = torch.tensor([[0] * gap + [1] * len(tokens)] * 3, device=device)
    alone = torch.tensor([tokens], device=device)
    was_training = backbone.model.training
    backbone.model.eval()
    with torch.no_grad():
        padded = backbone.logits(ids, mask).float()
        unpadded = backbone.logits(alone, torch.ones_like(alone)).float()
    backbone.model.train(was_training)
    first = gap + int(backbone.spec.logits_shift)        # Dream: the row before the first real token is a pad's
    return PaddingCheck(
        content=(padded[0, first:] - padded[1, first:]).abs().max().item(),
        alone=(padded[0, first:] - unpadded[0, first - gap:]).abs().max().item(),
        reach=(padded[0, first] - padded[2, first]).abs().max().item(),
        tolerance=padding_tolerance(next(backbone.model.parameters()).dtype, padded[:, first:].abs().max().item()))


def check_padding_is_ignored(backbone: Backbone) -> PaddingCheck:
    """Stop with ``PaddingMaskError`` unless the MDM ignores its padding and attends both ways
    (``measure_padding``): within ``tolerance``, the rows that differ only in what their padding
    holds agree (padding weighs exactly 0 in attention), and the padded row is the row alone (a mask
    form the model turns causal on padded rows fails here); beyond it, the last token moves the
    first real token's logits (attention is bidirectional on a padded row, not only on a full one)."""
    check = measure_padding(backbone)
    if not check.content <= check.tolerance:
        raise PaddingMaskError(_padding_message(
            backbone, f"the logits of a row's real tokens change by up to {check.content:.3g} when only what its left "
                      f"padding holds changes (tolerance {check.tolerance:.3g})"))
    if not check.alone <= check.tolerance:
        raise PaddingMaskError(_padding_message(
            backbone, f"a left-padded row's logits differ from the row alone by up to {check.alone:.3g} "
                      f"(tolerance {check.tolerance:.3g})"))
    if not check.reach > check.tolerance:
        raise PaddingMaskError(_padding_message(
            backbone, f"attention is not bidirectional on a padded row: changing its last token moves its first "
                      f"token's logits by {check.reach:.3g} (at most rounding, tolerance {check.tolerance:.3g})"))
    return check


def padding_tolerance(dtype: torch.dtype, logit_scale: float) -> float:
    """``PADDING_TOLERANCE_UNITS`` rounding units of ``dtype`` (its epsilon) times 1 + the largest
    logit, and at least ``PADDING_TOLERANCE_FLOOR`` times it: float32's rounding, accumulated over
    long sums, reaches a few epsilons where bf16 and fp16, rounded after each fp32-accumulated
    matmul, stay below one. tests/llm/test_llm_padding_check.py measures rounding and faults on the
    stand-ins in each dtype and holds both margins."""
    return max(PADDING_TOLERANCE_UNITS * torch.finfo(dtype).eps, PADDING_TOLERANCE_FLOOR) * (1 + logit_scale)


def _padding_message(backbone: Backbone, what: str) -> str:
    spec = backbone.spec
    model = backbone.model.get_base_model() if hasattr(backbone.model, "get_base_model") else backbone.model
    try:
        modeling_file = inspect.getsourcefile(type(model))
    except TypeError:
        modeling_file = type(model).__module__
    if spec.remote_code:
        fix = (f"pin llm.models.{spec.name}.revision to a commit of {spec.hub_repository or spec.weights} whose "
               f"modeling code applies the attention mask (LLaDA: the newer modeling_llada.py; the older one passes "
               f"attn_mask=None: github.com/ML-GSAI/LLaDA/issues/89 and /issues/90), and check "
               f"llm.models.{spec.name}.attention_mask "
               f"({spec.attention_mask}) is the form that code takes")
    else:
        fix = (f"llm.models.{spec.name}.attention_mask = {spec.attention_mask!r} does not give {type(model).__name__} "
               f"a bidirectional padding mask: use the form its code takes (padding_2d or additive_4d)")
    return (f"config.yaml: llm.models.{spec.name} (revision {backbone.revision}): padding is not ignored: {what} "
            f"(backbone.check_padding_is_ignored). Batched evaluation, stacked training rows "
            f"and the probes' placement gaps would see the padding, so nothing is run. Modeling code: "
            f"{modeling_file}. Fix: {fix}. See docs/llm.md.")


@contextmanager
def _lm_head_only_at(model: torch.nn.Module, positions: torch.Tensor):
    """While open, the model's LM head (its output embeddings, a linear layer in every model the
    project runs: transformers' ``lm_head``, LLaDA's ``ff_out``) receives the (B, m) ``positions``
    of the final hidden states instead of all of them, so the model returns (B, m, V) logits."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear):
        raise TypeError(f"the LM head is a {type(head).__name__}, not a linear layer: cannot restrict it to positions")

    def gather(module, args):
        hidden = args[0]
        return (hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1])),)

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def load_backbone(spec: ModelSpec, device: torch.device, seed: int, tokenizer_path: Path | None = None) -> Backbone:
    """A real model from its weights (offline), or a stand-in built from its config with ``seed``.
    The special-token ids are checked against the tokenizer before the weights are read."""
    if spec.is_standin:
        if tokenizer_path is None:
            raise ValueError(f"{spec.name} is a stand-in: it needs the stand-in tokenizer")
        tokenizer, source = load_standin_tokenizer(tokenizer_path), tokenizer_path
    else:
        source = resolve_weights(spec)
        tokenizer = _load_tokenizer(spec, source)
    pad, eos, mask = special_token_ids(spec, tokenizer, source)
    if spec.is_standin:
        model = build_standin(spec, len(tokenizer), tokenizer.eos_token_id, seed)
        generation_eos = []
    else:
        model = _load_model(spec, source)
        generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None) or []
        generation_eos = [generation_eos] if isinstance(generation_eos, int) else list(generation_eos)
    rows, ids = model.get_input_embeddings().num_embeddings, {"pad": pad, "EOS": eos, "mask": mask}
    if max(i for i in ids.values() if i is not None) >= rows:
        raise ValueError(f"{source}: the model's input embeddings have {rows} rows, but the special-token ids are "
                         f"{ids}; expected ids below {rows} (config.yaml: llm.models.{spec.name}.mask_token_id, or "
                         f"the tokenizer)")
    model.to(device=device, dtype=DTYPES[spec.precision])
    backbone = Backbone(spec, model, tokenizer, pad, eos, frozenset([eos, pad, *generation_eos]), mask,
                        weights_revision(spec))
    try:
        backbone.prompt_format
    except ValueError as error:
        raise ValueError(f"config.yaml: llm.models.{spec.name}.chat_template is true, but {error} "
                         f"({spec.weights or tokenizer_path}); set it to false. See docs/llm.md.") from None
    if spec.kind == "mdm":
        check_padding_is_ignored(backbone)
    return backbone


def special_token_ids(spec: ModelSpec, tokenizer, source: Path) -> tuple[int, int, int | None]:
    """(pad, EOS, mask) ids: the tokenizer's, the mask id from ``llm.models.<name>.mask_token_id``
    where given. A configured mask id must be the tokenizer's mask token, or, for a tokenizer that
    names none (LLaDA's), one of its special added tokens; no two of the three may coincide (the
    samplers would stop on, or never fill, a mask)."""
    key = f"config.yaml: llm.models.{spec.name}.mask_token_id"
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(f"{source}: the tokenizer defines no EOS token; expected one (every completion ends with it)")
    # App. C: pad = EOS for LLaMA; tokenizers that define their own pad token (Qwen) keep it.
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if spec.kind != "mdm":
        return pad, eos, None
    mask, own = spec.mask_token_id, tokenizer.mask_token_id
    if mask is None:
        if own is None:
            raise ValueError(f"{key} is null and the tokenizer at {source} has no mask token; expected the id of the "
                             f"model's mask token")
        mask = own
    elif own is not None and own != mask:
        raise ValueError(f"{key} = {mask}, but the tokenizer at {source} has mask token {tokenizer.mask_token!r} = "
                         f"{own}; expected the same id (the model was trained to fill that one)")
    elif own is None:
        added = getattr(tokenizer, "added_tokens_decoder", {}).get(mask)
        if added is None or not added.special:
            found = "not a token of it" if mask >= len(tokenizer) else f"{tokenizer.convert_ids_to_tokens(mask)!r}"
            raise ValueError(f"{key} = {mask}, but in the tokenizer at {source} that id is {found}; expected a special "
                             f"added token (LLaDA's <|mdm_mask|>, Dream's <|mask|>)")
    if mask in (pad, eos):
        raise ValueError(f"{key} = {mask} is also the tokenizer's {'pad' if mask == pad else 'EOS'} id ({source}); "
                         f"expected a token of its own")
    return pad, eos, mask


def with_seeded_lora(backbone: Backbone, lora: dict, seed: int) -> Backbone:
    """``backbone`` with peft LoRA adapters drawn from the run ``seed``."""
    spec = backbone.spec
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "llm-lora-init"))
        model = attach_lora(backbone.model, spec.lora_targets, lora["r"], lora["alpha"], lora["dropout"],
                            spec.train_base, f"llm.models.{spec.name}.lora_targets")
    return replace(backbone, model=model)


def with_stacked_lora(backbone: Backbone, lora: dict, seeds: list[int]) -> Backbone:
    """``backbone`` (frozen) with the adapters of the runs of ``seeds`` stacked (``stacked_lora.py``),
    each drawn exactly as ``with_seeded_lora`` draws it for its run alone."""
    spec = backbone.spec
    if spec.train_base:
        raise ValueError(
            f"config.yaml: llm.models.{spec.name}.train_base is true: its runs train their base weights, so they "
            f"cannot share one base; set llm.train.stack_seeds: false for it (the quick preset does)")
    if lora["dropout"]:
        raise ValueError(f"config.yaml: llm.lora.dropout = {lora['dropout']}: stacked runs (llm.train.stack_seeds) "
                         f"have no LoRA dropout; set it to 0 or stack_seeds to false")
    adapters = []
    for seed in seeds:   # peft draws each run's initial adapters, then gives the base back unchanged
        wrapped = with_seeded_lora(backbone, lora, seed).model
        adapters.append(trainable_state(wrapped))
        wrapped.unload()
    return replace(backbone, model=stack_adapters(backbone.model, adapters, lora["alpha"] / lora["r"]))


def _load_tokenizer(spec: ModelSpec, path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=spec.remote_code)


def _load_model(spec: ModelSpec, path: Path) -> torch.nn.Module:
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM

    # LLaDA and Dream register their language-model classes under AutoModel.
    auto_class = AutoModel if spec.kind == "mdm" else AutoModelForCausalLM
    # transformers renamed the keyword in 4.56; the remote-code env pins an older release.
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    dtype_keyword = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    return auto_class.from_pretrained(path, trust_remote_code=spec.remote_code, **{dtype_keyword: DTYPES[spec.precision]})
