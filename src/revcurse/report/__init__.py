"""The report: the fidelity report (the paper's printed values next to ours) and the HTML pages of the tables;
``python -m revcurse.report`` is its command line."""
