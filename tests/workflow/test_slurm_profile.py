"""The cluster profile without a cluster: site-specific values come from a second profile
(slurm/site.example.yaml), never from the rules."""
import re

import yaml

from helpers.workflow import ROOT, snakemake

SITE_KEYS = re.compile(r"slurm_partition|slurm_account|qos")


def test_no_rule_names_a_partition_account_or_qos():
    for rule_file in (ROOT / "workflow/rules").glob("*.smk"):
        assert not SITE_KEYS.search(rule_file.read_text()), rule_file.name


def test_the_site_profile_keeps_the_cluster_defaults_and_adds_the_site(workdir):
    cluster = yaml.safe_load((ROOT / "slurm/config.yaml").read_text())
    site = yaml.safe_load((ROOT / "slurm/site.example.yaml").read_text())
    # A later profile replaces whole keys: the site's default-resources must repeat the cluster's.
    assert cluster["default-resources"].items() <= site["default-resources"].items()
    output = snakemake("results/table2.csv", "-n", "--profile", "slurm", "--profile", "slurm/site.example.yaml",
                       cwd=workdir)
    resources = re.findall(r"^\s+resources: (.*)$", output, re.M)
    assert resources and all("slurm_partition=gpu" in r and "slurm_account=myproject" in r for r in resources)
