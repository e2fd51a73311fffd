"""Reversal curse in masked diffusion models: the science behind the workflow.

One folder per study, each with one command line (``python -m revcurse.<study>``) that the
Snakemake rules in ``workflow/rules`` call: ``toy`` (the paper's §5 toy task), ``llm`` (the
large-scale study), ``ablation`` (beyond the paper: which ingredient moves reverse accuracy, built
on the toy study), ``theory`` (§4, App. A-B) and ``report`` (the fidelity report, the report's
tables). Shared code: ``core`` (config, I/O, provenance, schemas, devices), ``plotting`` (figure
helpers) and ``data`` (the toy task and the relational datasets). No study imports another's files
but the ablation's use of the toy study (tests/core/test_layout.py).
"""
