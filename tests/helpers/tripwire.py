"""The toy training tripwire (tests/toy/test_tripwire.py): the first steps of a model at L = 10, seed 0, built
as the workflow builds it, with every step's loss and gradient norm and a digest of the weights at the last
step, against the values stored in tests/toy/tripwire/ (written by tests/toy/tripwire/make_values.py)."""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch

from revcurse.core.config import REPO_ROOT
from revcurse.core.devices import cpu_has_bf16_matmul
from revcurse.data.toy import MASK_ID, make_forward_dataset, read_dataset, write_dataset
from revcurse.toy import train as toy_train
from revcurse.pipeline.config import load_config
from revcurse.report.reference import machine
from revcurse.toy.specs import toy_train_spec

VALUES = Path(__file__).resolve().parents[1] / "toy/tripwire"
LENGTH, SEED, STEPS = 10, 0, 30


def workflow_config(precision: str) -> dict:
    """config.yaml as `snakemake --config preset=paper` resolves it, with toy.train.precision as a --configfile sets it."""
    return load_config([{"toy": {"train": {"precision": precision}}}])


def reference_config(preset: str) -> dict:
    """config.yaml overlaid with reference/paper/config.yaml, resolved under ``preset``, as the reference's runs were."""
    return load_config([REPO_ROOT / "reference/paper/config.yaml"], {"preset": preset})


# Case name -> (model, the resolved config it runs): the workflow's defaults and the shipped reference's presets,
# among them both models of the Table 2 experiment's rerun (docs/toy.md, "The Table 2 experiment", stage C).
CASES = {
    "config_yaml_fp32": ("mdm", lambda: workflow_config("fp32")),
    "config_yaml_bf16": ("mdm", lambda: workflow_config("bf16")),
    "paper_bf16": ("mdm", lambda: reference_config("paper_bf16")),
    "paper_fp32": ("mdm", lambda: reference_config("paper_fp32")),
    "table2_init_radd": ("mdm", lambda: reference_config("table2_init_radd")),
    "table2_init_radd_arm": ("arm", lambda: reference_config("table2_init_radd")),
}


def this_machine() -> dict:
    """What bitwise equality of the arithmetic depends on besides the code."""
    return {"cpu": machine()["cpu"], "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_matmul": cpu_has_bf16_matmul(), "torch": torch.__version__, "threads": 1}


def digest(tensors: dict) -> str:
    h = hashlib.sha256()
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class _Stop(Exception):
    pass


def short_run(case: str, steps: int = STEPS) -> dict:
    """The case's run, as `python -m revcurse.toy train` makes it (spec, configs, data file), stopped after ``steps``."""
    model, config = CASES[case]
    spec = toy_train_spec(config(), model, LENGTH, SEED)
    # Every step's loss logged (logging changes no arithmetic); on the CPU, where the stored values were made.
    spec["train"] = {**spec["train"], "log_every": 1, "device": "cpu"}
    model_cfg, train_cfg = toy_train.toy_configs(spec)
    record = {"spec": spec}

    def stop(state) -> None:   # the configured step count is kept, so any schedule over it is the real one
        if state.step == steps:
            record["losses"] = [row["loss"] for row in state.losses]
            record["grad_norms"] = [row["grad_norm"] for row in state.losses]
            record["raw_sha256"] = digest(state.model.state_dict())
            record["ema_sha256"] = digest(dict(enumerate(state.ema.shadow))) if state.ema else None
            raise _Stop

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # as each toy job (threads: 1 in workflow/rules/toy.smk)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"L{LENGTH}.parquet"
            write_dataset(make_forward_dataset(LENGTH), path, path.with_suffix(".manifest.json"))
            data = read_dataset(path).tokens
        toy_train.train(model_cfg, train_cfg, data, [SEED], MASK_ID, callbacks=[stop])
    except _Stop:
        pass
    finally:
        torch.set_num_threads(threads)
    return record


def stored(case: str) -> dict:
    return json.loads((VALUES / f"{case}.json").read_text())


def make_values(case: str) -> dict:
    return {"case": case, "steps": STEPS, "machine": this_machine(), **short_run(case)}


def other_machine(values: dict) -> str | None:
    """Why bitwise equality is not expected here (another CPU kind or torch), or None."""
    here = this_machine()
    differ = {k: (v, here.get(k)) for k, v in values["machine"].items() if here.get(k) != v}
    if not differ:
        return None
    return (f"tripwire values of {values['case']} were made on {values['machine']}; here "
            + ", ".join(f"{k} is {now!r}" for k, (_, now) in differ.items())
            + ": bitwise equality is not expected across CPU kinds (regenerate with tests/toy/tripwire/make_values.py"
            " to check this machine)")


def mismatch(values: dict, got: dict) -> str | None:
    """None when ``got`` repeats the stored run bit for bit; else what differs first, and what that means."""
    found = None
    for step, (a, b, c, d) in enumerate(zip(values["losses"], got["losses"], values["grad_norms"], got["grad_norms"]), 1):
        if (a, c) != (b, d):
            found = f"step {step}: loss {b!r} (stored {a!r}), gradient norm {d!r} (stored {c!r})"
            break
    if found is None and len(values["losses"]) != len(got["losses"]):
        found = f"{len(got['losses'])} steps logged (stored {len(values['losses'])})"
    if found is None:
        found = next((f"{k} of the weights at step {values['steps']}: {got[k]} (stored {values[k]})"
                      for k in ("raw_sha256", "ema_sha256") if got[k] != values[k]), None)
    if found is None:
        return None
    changed = sorted(f"{section}.{k}" for section in ("model_fields", "train")
                     for k in values["spec"][section].keys() | got["spec"][section].keys()
                     if values["spec"][section].get(k) != got["spec"][section].get(k))
    settings = f"settings changed since: {', '.join(changed)}" if changed else "same settings"
    return (f"The toy training arithmetic changed: {values['case']} ({values['spec']['model'].upper()}, L = {LENGTH}, "
            f"seed {SEED}; {settings}) "
            f"first differs at {found}. Runs made by the code that stored the values (`git log tests/toy/tripwire/`) "
            "no longer regenerate bit for bit; the shipped reference's runs name their code in their Parquet files "
            "(reference/paper/runs/). If the change is deliberate, rerun `python tests/toy/tripwire/make_values.py` "
            "and commit the values with a message that says why (docs/toy.md, 'Stacking and reproducibility').")
