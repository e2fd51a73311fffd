"""Probes of the fine-tuned large models (paper §6, App. F): plan, hooks, measure, and Figures 6, 7, 9."""
