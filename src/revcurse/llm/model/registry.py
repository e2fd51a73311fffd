"""The model registry: ``config.yaml`` → ``llm.models``, and where each model's weights are.

A real model names its weights by a local directory or a Hugging Face hub id that must already
be in the local cache: nothing is ever downloaded. Its ``revision`` pins the commit of the hub
repository the weights (and, for LLaDA and Dream, the modeling code) must come from: the cache
snapshot of that commit, or a local directory that records it (``hf download --local-dir``
writes the commit next to every file), or, with ``revision_stated``, plain weights that record no
commit, whose outputs then record the revision as stated (``STATED``). A stand-in has no weights; it is built from its
``standin`` architecture (``standins.py``) and trained from scratch.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SAMPLER_OF_KIND = {"arm": ("greedy",), "mdm": ("llada", "dream")}
COMMIT = re.compile(r"^[0-9a-f]{40}$")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+$")   # owner/name; a path has another shape
# Hub owners whose models are gated: the licence must be accepted on the hub, and hf download needs a token.
GATED_OWNERS = ("meta-llama",)
STANDIN_REVISION = "stand-in"          # what a stand-in's outputs record as the model revision
STATED = " (stated)"                   # after a revision the weights do not record, only the config states
POSITION_IDS = ("index", "visible")


class MissingWeightsError(ValueError):
    """A real model's weights are neither a local directory nor in the Hugging Face cache, or are
    not the pinned revision."""


@dataclass(frozen=True)
class ModelSpec:
    name: str                        # key under llm.models
    label: str                       # column title in the tables
    kind: str                        # mdm | arm
    weights: str | None              # local directory or hub id; None for a stand-in
    standin: dict | None             # architecture of a stand-in (standins.py); None for a real model
    remote_code: bool                # the checkpoint ships its own modeling code (LLaDA, Dream)
    mask_token_id: int | None        # MDMs; None: the stand-in tokenizer's mask token
    attention_mask: str              # how the model takes a bidirectional padding mask (backbone.py)
    logits_shift: bool               # Dream: logits[i] predict token i+1, as in its AR parent
    sampler: str                     # greedy | llada | dream
    lora_targets: tuple[str, ...]    # module names LoRA wraps (the attention projections)
    train_base: bool                 # also train the base weights (stand-ins, from scratch)
    learning_rates: dict[str, float] # per dataset, with a "default"
    precision: str                   # fp32 | bf16 | fp16: the weights' dtype
    revision: str | None = None      # real models: the pinned commit of the hub repository
    chat_template: bool = False      # wrap every prompt in the tokenizer's chat template (docs/llm.md)
    position_ids: str = "index"      # index: the sequence index; visible: count visible tokens (Dream)
    repository: str | None = None    # the hub repository `revision` is a commit of (for a local `weights`)
    revision_stated: bool = False    # weights that record no commit are taken to be `revision`

    @classmethod
    def from_config(cls, name: str, entry: dict) -> "ModelSpec":
        key = f"llm.models.{name}"
        if (entry.get("weights") is None) == (entry.get("standin") is None):
            raise ValueError(f"config.yaml: {key}: give exactly one of 'weights' (a real model) or 'standin'")
        standin_only = [k for k in ("revision", "chat_template", "repository", "revision_stated") if entry.get(k)]
        if entry.get("standin") is not None and standin_only:
            raise ValueError(f"config.yaml: {key}: a stand-in has no hub revision and its tokenizer no chat template; "
                             f"remove {standin_only} from it")
        if entry.get("revision_stated") and entry.get("revision") is None:
            raise ValueError(f"config.yaml: {key}.revision_stated is true but {key}.revision is null; state the "
                             f"commit the weights hold in {key}.revision")
        if entry.get("revision") is not None and not COMMIT.match(str(entry["revision"])):
            raise ValueError(f"config.yaml: {key}.revision = {entry['revision']!r}; expected the 40-hex commit hash "
                             f"of the hub repository (a branch or tag name can move)")
        if entry.get("position_ids", "index") not in POSITION_IDS:
            raise ValueError(f"config.yaml: {key}.position_ids = {entry['position_ids']!r}; expected one of {POSITION_IDS}")
        if entry["sampler"] not in SAMPLER_OF_KIND[entry["kind"]]:
            raise ValueError(
                f"config.yaml: {key}.sampler = {entry['sampler']!r}; expected one of "
                f"{SAMPLER_OF_KIND[entry['kind']]} for kind {entry['kind']!r}"
            )
        return cls(
            name=name,
            label=entry["label"],
            kind=entry["kind"],
            weights=entry.get("weights"),
            standin=entry.get("standin"),
            remote_code=entry.get("remote_code", False),
            mask_token_id=entry.get("mask_token_id"),
            attention_mask=entry.get("attention_mask", "additive_4d"),
            logits_shift=entry.get("logits_shift", False),
            sampler=entry["sampler"],
            lora_targets=tuple(entry["lora_targets"]),
            train_base=entry.get("train_base", False),
            learning_rates=dict(entry["lr"]),
            precision=entry["precision"],
            revision=entry.get("revision"),
            chat_template=entry.get("chat_template", False),
            position_ids=entry.get("position_ids", "index"),
            repository=entry.get("repository"),
            revision_stated=entry.get("revision_stated", False),
        )

    @property
    def is_standin(self) -> bool:
        return self.standin is not None

    @property
    def hub_repository(self) -> str | None:
        """The hub repository to fetch the pinned revision from: ``weights`` if it is a hub id (the
        cache is looked up by it), else ``repository`` (a local directory names none)."""
        return self.weights if self.weights and is_hub_id(self.weights) else self.repository

    def learning_rate(self, dataset: str) -> float:
        return self.learning_rates.get(dataset, self.learning_rates["default"])


def resolve_weights(spec: ModelSpec) -> Path:
    """The local directory holding a real model's weights at its pinned revision, or
    MissingWeightsError saying how to provide them. A hub id is looked up in the Hugging Face
    cache only (offline)."""
    return _resolve(spec)[0]


def weights_revision(spec: ModelSpec) -> str:
    """The commit the model's outputs record: the pinned revision of a real model (checked against
    its weights by ``resolve_weights``; followed by ``STATED`` where the weights record none and
    ``revision_stated`` vouches for them), ``STANDIN_REVISION`` for a stand-in."""
    return STANDIN_REVISION if spec.is_standin else _resolve(spec)[1]


def recorded_revision(directory: Path) -> str | None:
    """The hub commit a checkpoint directory holds, where it says: a cache snapshot is named after
    it; ``hf download --local-dir`` writes it as the first line of
    ``.cache/huggingface/download/<file>.metadata``. None when the directory does not say."""
    directory = Path(directory)
    if COMMIT.match(directory.name) and directory.parent.name == "snapshots":
        return directory.name
    metadata = directory / ".cache" / "huggingface" / "download" / "config.json.metadata"
    if metadata.is_file():
        first = metadata.read_text().split("\n", 1)[0].strip()
        return first if COMMIT.match(first) else None
    return None


def check_weights(specs) -> None:
    """Resolve every real model of ``specs`` (stand-ins are skipped) and raise one MissingWeightsError
    that names each model whose weights are not here, with its fix, rather than only the first."""
    errors = []
    for spec in specs:
        if not spec.is_standin:
            try:
                _resolve(spec)
            except MissingWeightsError as error:
                errors.append(str(error))
    if len(errors) > 1:
        raise MissingWeightsError(f"{len(errors)} models have no usable weights here; each with its fix:\n\n"
                                  + "\n\n".join(f"{n}. {error}" for n, error in enumerate(errors, 1)))
    if errors:
        raise MissingWeightsError(errors[0])


def is_hub_id(weights: str) -> bool:
    """``owner/name`` that is not an existing path: looked up in the Hugging Face cache. Anything else
    (``/data/models/x``, ``./x``, ``~/x``, ``a/b/c``) is a local directory."""
    return bool(HUB_ID.match(weights)) and not Path(weights).exists()


def _resolve(spec: ModelSpec) -> tuple[Path, str]:
    if spec.is_standin:
        raise ValueError(f"{spec.name} is a stand-in: it has no weights")
    local = Path(spec.weights).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise MissingWeightsError(_missing(spec, f"the directory {local} has no config.json"))
        found = recorded_revision(local.resolve())
    elif not is_hub_id(spec.weights):
        raise MissingWeightsError(_missing(spec, f"{local} is not a directory" if local.exists()
                                          else f"there is no directory {local}"))
    else:
        from huggingface_hub import snapshot_download

        try:   # with a pinned commit: that snapshot; without: the cached one, to name it in the error
            local = Path(snapshot_download(spec.weights, revision=spec.revision, local_files_only=True))
        except Exception as error:  # not cached, or not a valid hub id: both mean "not here"
            cached = cached_revisions(spec.weights)
            if cached:   # `hf download --revision` fills a snapshot but no branch ref
                raise MissingWeightsError(_other_snapshots(spec, cached)) from None
            cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
            what = f"at revision {spec.revision} " if spec.revision else ""
            reason = f"{what}is neither a local directory nor in the Hugging Face cache ({cache}; {type(error).__name__})"
            raise MissingWeightsError(_missing(spec, reason)) from None
        found = recorded_revision(local)
    if spec.revision is None:
        raise MissingWeightsError(_unpinned(spec, local, found))
    if found is None and spec.revision_stated:
        return local, spec.revision + STATED
    if found != spec.revision:
        raise MissingWeightsError(_wrong_revision(spec, local, found))
    return local, spec.revision


def cached_revisions(hub_id: str) -> list[str]:
    """The commits whose snapshots of ``hub_id`` the Hugging Face cache holds (with a config.json)."""
    from huggingface_hub import constants

    snapshots = Path(constants.HF_HUB_CACHE) / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    return sorted(d.name for d in snapshots.glob("*") if COMMIT.match(d.name) and (d / "config.json").is_file())


def _other_snapshots(spec: ModelSpec, cached: list[str]) -> str:
    key = f"llm.models.{spec.name}.revision"
    holds = f"the Hugging Face cache holds {spec.weights} at revision {', '.join(cached)}"
    pin = f"`revision: {cached[0]}`" if len(cached) == 1 else "one of those"
    if spec.revision is None:
        return (f"config.yaml: {key} is not set and {holds} (a `--revision` download, with no branch to follow): "
                f"pin {pin} under llm.models.{spec.name}. See docs/llm.md.")
    return (f"config.yaml: {key} = {spec.revision} but {holds}, not that one. Fetch the pinned one "
            f"(`{_download(spec, spec.revision)}`) or, if the change is intended, pin {pin} (and rerun the "
            f"model's jobs). See docs/llm.md.")


def _unpinned(spec: ModelSpec, local: Path, found: str | None) -> str:
    key = f"llm.models.{spec.name}.revision"
    holds = (f"The weights at {local} are revision {found}: pin it with `revision: {found}` under "
             f"llm.models.{spec.name} (config.yaml or your weights overlay)" if found else
             f"The weights at {local} do not record their revision: {_record_it(spec)}")
    return (f"config.yaml: {key} is not set: every output records the model revision it was made with, so a "
            f"real model's hub commit must be pinned. {holds}. See docs/llm.md.")


def _wrong_revision(spec: ModelSpec, local: Path, found: str | None) -> str:
    key = f"llm.models.{spec.name}.revision"
    if found is None:
        return (f"config.yaml: {key} = {spec.revision} but the weights at {local} do not record their revision: "
                f"{_record_it(spec)}. See docs/llm.md.")
    return (f"config.yaml: {key} = {spec.revision} but the weights at {local} are revision {found}. Fetch the "
            f"pinned one (`{_download(spec, spec.revision, 'DIR')}`) or, if the change is intended, pin {found} "
            f"(and rerun the model's jobs). See docs/llm.md.")


def _record_it(spec: ModelSpec) -> str:
    key = f"llm.models.{spec.name}"
    stated = (f"; or, if you know these weights are commit {spec.revision}, say so with `revision_stated: true` "
              f"under {key} (every output then records the revision as '{spec.revision}{STATED}')"
              if spec.revision else "")
    return (f"fetch them with `{_download(spec, spec.revision, 'DIR')}` (which records the commit in "
            f"DIR/.cache/huggingface/download) and point weights at DIR, or point weights at the hub id with HF_HOME "
            f"on a cache that holds that commit's snapshot{stated}")


def _download(spec: ModelSpec, revision: str | None, local_dir: str | None = None) -> str:
    """The `hf download` command that fetches ``revision`` of the model's hub repository (a local
    weights directory is no repository: ``repository`` names it, else a placeholder that says where)."""
    repo = spec.hub_repository or f"<the hub repository; set llm.models.{spec.name}.repository>"
    return (f"hf download {repo} --revision {revision or 'COMMIT'}"
            + (f" --local-dir {local_dir}" if local_dir else ""))


def _missing(spec: ModelSpec, reason: str) -> str:
    """Where a model's weights were looked for and how to put them there: a hub id's cache or a local
    directory, told apart; for a gated model, how to get access."""
    key = f"llm.models.{spec.name}.weights"
    overlay = (f"in a config overlay passed with `--configfile weights.yaml`:\n"
               f"    llm: {{models: {{{spec.name}: {{weights: /path/to/{Path(str(spec.weights)).name}}}}}}}\n")
    if is_hub_id(spec.weights):
        where = (f"{key} = {spec.weights!r}, a Hugging Face hub id, {reason}. Nothing is downloaded. Fill the cache "
                 f"on a machine with internet (`{_download(spec, spec.revision)}`) and set HF_HOME to it, or "
                 f"download the checkpoint into a directory (`{_download(spec, spec.revision, 'DIR')}`) and point "
                 f"{key} at DIR, e.g. {overlay}")
    else:
        where = (f"{key} = {spec.weights!r}, a local directory: {reason}. Nothing is downloaded. Put the checkpoint "
                 f"there (config.json, *.safetensors, tokenizer files; on a machine with internet: "
                 f"`{_download(spec, spec.revision, spec.weights)}`), or point {key} at the directory that holds it, "
                 f"e.g. {overlay}")
    return f"config.yaml: {where}{_gated(spec)}Or run the stand-ins instead (`--config preset=quick`). See docs/llm.md."


def _gated(spec: ModelSpec) -> str:
    """For a gated model (``GATED_OWNERS``; a local LLaMA checkpoint came from one): how to get access.
    The token goes through the environment only, so it never reaches the config, a command or an output."""
    owner = str(spec.weights).split("/")[0] if is_hub_id(spec.weights) else None
    if owner not in GATED_OWNERS and not (owner is None and "llama" in spec.label.lower()):
        return ""
    page = f"https://huggingface.co/{spec.weights}" if owner else "its page on huggingface.co"
    return (f"{spec.label} is a gated model: before `hf download` can fetch it, accept its licence on {page} "
            f"with your Hugging Face account, then give hf a read token (https://huggingface.co/settings/tokens) "
            f"through the environment variable HF_TOKEN (`export HF_TOKEN=...` in the shell that downloads). "
            f"Never write the token into config.yaml, an overlay or a command line: the workflow records its "
            f"config and commands in its outputs and logs.\n")
