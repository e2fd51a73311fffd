"""The paper's theory (§4, App. A-B), computed rather than quoted; ``python -m revcurse.theory`` is its command line."""
