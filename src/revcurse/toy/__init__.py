"""The toy study (paper §5, App. D): one configurable model, training, evaluation (Table 2), probes and
Figures 3-5, 11-13; ``python -m revcurse.toy`` is its command line."""
