"""Large-scale study (paper §3, App. C; docs/llm.md): LoRA fine-tuning of masked diffusion models
(LLaDA, Dream) and autoregressive models (LLaMA-3.1, Qwen2.5) on the relational datasets, forward
and reverse exact match, Table 1 and Tables 4-6.

One concern per module:

- ``model/``: ``registry``, the models of ``config.yaml`` → ``llm.models`` and where their weights
  are; ``tokenizer``, ``standins``, the small models built from configs that stand in for the real
  checkpoints where none can be downloaded; ``backbone``, one model + tokenizer with the calling
  conventions of its family (attention mask, Dream's shifted logits), loaded from weights or built
  as a stand-in; ``lora``, the adapters; ``stacked_lora``, K runs' adapters over one frozen base,
  trained in one job;
- ``batches``: tokenised training and query batches;
- ``objectives``: the masked-diffusion and next-token losses; ``samplers``: greedy decoding and
  the LLaDA / Dream diffusion samplers;
- ``finetune``: the training loop with checkpoints and resume; ``evaluate``: exact match of every
  checkpoint; ``tables``: Table 1 and Tables 4-6; ``plan``: the grid and the run specs the
  workflow passes to ``python -m revcurse.llm``; ``runs``: what the run commands share;
- ``probes/``: the probes of the fine-tuned models (``plan``, ``hooks``, ``measure``: attention
  scores, gradient alignment, probabilities) and Figures 6, 7, 9 (``figures``);
- ``__main__``: the study's one command line.

Choices where the paper is ambiguous are in docs/llm.md and docs/llm_probes.md.
"""
