"""Reversal curse in masked diffusion models: the science behind the workflow.

One module per concern; the Snakemake rules in ``workflow/rules`` only call these.
"""
