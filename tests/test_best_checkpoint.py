"""best.pt holds the weights only (issue 14): smaller, still read by evaluate and predict, not resumable."""

from __future__ import annotations

import torch

from tests._train_helpers import train_args


def test_best_pt_is_weights_only_evaluates_and_refuses_resume(cli, tmp_path, tiny_demo):
    run = tmp_path / "run"
    result = cli(*train_args(tiny_demo, run))
    assert result.exit_code == 0, result.stderr
    last = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert last["optimizer"] is not None and "optimizer" not in best and best["resumable"] is False
    assert all(torch.equal(best["model"][k], v) for k, v in last["model"].items())  # epoch 1 is the best
    assert (run / "best.pt").stat().st_size < (run / "last.pt").stat().st_size

    evaluated = cli("evaluate", run / "best.pt", "--data", tiny_demo, "--format", "demo", "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    resumed = cli(*train_args(tiny_demo, run, "--resume", run / "best.pt"))
    assert resumed.exit_code == 1
    assert "holds the weights only" in resumed.stderr and "last.pt" in resumed.stderr
    assert len(resumed.stderr.strip().splitlines()[-1]) > 0 and "Traceback" not in resumed.stderr
