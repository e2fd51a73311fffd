"""Datasets: the toy letter-pair task (``toy``) and the relational datasets."""
