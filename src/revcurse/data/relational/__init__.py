"""Relational datasets of the large-scale study: Parent-Child, Person-Description, T-REx.

Paper §3 and App. C.1; formats and choices in docs/datasets.md. ``python -m
revcurse.data.relational`` builds, audits and describes them (see ``__main__``).

For the training and evaluation code: ``TASKS`` maps each row of Table 1 to its dataset
and direction; ``load_dataset(manifest)`` returns the records after checking hashes.
"""
from revcurse.data.relational.build import DATASETS, TASKS, build_dataset
from revcurse.data.relational.records import RelationalDataset, load_dataset, normalize_answer

__all__ = ["DATASETS", "TASKS", "RelationalDataset", "build_dataset", "load_dataset", "normalize_answer"]
