"""Beyond the paper: the ablation grid over position encoding, attention, objective and depth (docs/ablation.md),
built on the toy study; ``python -m revcurse.ablation`` is its command line."""
