"""Benchmark of topic 03 (maximum entropy, energy-based models and MCMC): sampler speed and model quality.

With the settings of a profile (``course_lib.presets.topic03``, the lecture's own), it measures

* the Ising model's checkerboard Gibbs sampler: spin updates per second on lattices of 64x64 and
  256x256 sites, one chain and a batch of chains, against the same chain updated site by site in
  a Python loop (:func:`~course_lib.models.energy.sitewise_gibbs`), and the speed-up;
* the RBM on binarized MNIST (preset ``rbm``, persistent CD and CD): training time, and the test
  log-likelihood in nats per image with log Z from annealed importance sampling (preset
  ``rbm_ais``), repeated to show the estimator's spread;
* the 2-D energy model (preset ``ebm_2d``): KL(truth || model) in nats on the preset's grid, against
  a uniform density on the same box, and the training time;

and writes a markdown table with the hardware to ``benchmarks/RESULTS-03-<profile>.md``. It is a
measurement, not a test: run it on an idle machine. Usage::

    python benchmarks/bench_energy_models.py --profile cpu
    python benchmarks/bench_energy_models.py --profile gpu --parts ising,rbm
"""

from __future__ import annotations

import math
import sys

import torch
from measure import parse_args, run_parts, write_report

from course_lib.data import load_binarized_mnist, toy_distribution
from course_lib.models.energy import (
    checkerboard_gibbs,
    grid_kl,
    grid_log_density,
    pixel_log_odds,
    rbm_log_likelihood,
    sitewise_gibbs,
)
from course_lib.presets import build_and_train_ebm, build_and_train_rbm, preset
from course_lib.runtime import timed

PARTS = ("ising", "rbm", "ebm_2d")
"""What can be measured."""

ISING_BETA = 1 / 2.269
"""The Ising sampler is timed at the critical temperature (its speed does not depend on it)."""


def _spins(n_chains: int, side: int, device: torch.device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (n_chains, side, side), generator=g).float() * 2 - 1).to(device)


def _updates_per_second(n_chains: int, side: int, device: torch.device, seed: int, min_seconds: float = 1.0) -> float:
    """Spin updates per second of checkerboard Gibbs: sweeps are doubled until they take ``min_seconds``."""
    spins = _spins(n_chains, side, device, seed)
    g = torch.Generator(device=device).manual_seed(seed)
    checkerboard_gibbs(spins, beta=ISING_BETA, n_sweeps=2, generator=g)  # warm-up
    sweeps = 4
    while True:
        _, seconds = timed(lambda n=sweeps: checkerboard_gibbs(spins, beta=ISING_BETA, n_sweeps=n, generator=g), device)
        if seconds >= min_seconds or sweeps >= 1 << 20:
            return n_chains * side * side * sweeps / seconds
        sweeps *= 2


def bench_ising(profile: str, device: torch.device, seed: int) -> list[dict]:
    """Checkerboard Gibbs against the site-by-site loop (on the CPU, one chain of 32x32 sites)."""
    loop_side, loop_sweeps = 32, 3 if profile == "smoke" else 20
    spins = _spins(1, loop_side, torch.device("cpu"), seed)
    _, loop_seconds = timed(lambda: sitewise_gibbs(spins, beta=ISING_BETA, n_sweeps=loop_sweeps,
                                                   generator=torch.Generator().manual_seed(seed)), torch.device("cpu"))
    loop_rate = loop_sweeps * loop_side**2 / loop_seconds
    rows = [{"sampler": "site-by-site Python loop", "lattice": f"{loop_side}x{loop_side}", "chains": 1,
             "device": "cpu", "spin updates / s": loop_rate, "speed-up": 1.0}]
    sides = (64,) if profile == "smoke" else (64, 256)
    many = 16 if profile != "gpu" else 256
    for side in sides:
        for n_chains in (1, many):
            rate = _updates_per_second(n_chains, side, device, seed, min_seconds=0.2 if profile == "smoke" else 1.0)
            rows.append({"sampler": "checkerboard Gibbs", "lattice": f"{side}x{side}", "chains": n_chains,
                         "device": str(device), "spin updates / s": rate, "speed-up": rate / loop_rate})
    return rows


def bench_rbm(profile: str, device: torch.device, seed: int) -> list[dict]:
    """Train the RBM of preset ``rbm`` with PCD and with CD, then its test log-likelihood by AIS."""
    s, s_ais = preset("rbm", profile), preset("rbm_ais", profile)
    train_images = load_binarized_mnist("train").flatten(1)
    test_images = load_binarized_mnist("test").flatten(1)  # all 10,000: the headline figure
    if s["n_train"]:
        train_images = train_images[: s["n_train"]]
    rows = []
    for persistent in (True, False):
        name = f"{'PCD' if persistent else 'CD'}-{s['k']}"
        print(f"    training {name} ...", flush=True)
        rbm, _, train_seconds = build_and_train_rbm(s, train_images, test_images[:1_000], persistent=persistent,
                                                    device=device, seed=seed, progress=False)
        estimate, seconds = timed(lambda rbm=rbm: rbm_test_log_likelihood(rbm, test_images, train_images, s_ais,
                                                                          device, seed), device)
        rows.append({
            "model": f"RBM 784-{s['model']['n_hidden']}, {name}",
            "epochs": s["epochs"],
            "train (min)": train_seconds / 60,
            "test log-likelihood (nats/image)": estimate["log_likelihood"],
            "spread over AIS repeats (sd)": estimate["spread"],
            "AIS": f"{s_ais['n_repeats']} x {s_ais['n_runs']} runs, {s_ais['n_betas']:,} betas",
            "AIS (s per estimate)": seconds / s_ais["n_repeats"],
        })
    return rows


def rbm_test_log_likelihood(rbm, test_images, train_images, s_ais, device, seed) -> dict:
    """The test log-likelihood in nats per image, log Z by AIS from the base-rate model of the training pixels."""
    base = pixel_log_odds(train_images, eps=s_ais["base_clamp"]).to(device)
    result = rbm_log_likelihood(rbm, test_images, base_visible_bias=base, n_runs=s_ais["n_runs"],
                                n_betas=s_ais["n_betas"], n_repeats=s_ais["n_repeats"], seed=seed)
    return {"log_likelihood": result.log_likelihood, "spread": result.spread}


def bench_ebm_2d(profile: str, device: torch.device, seed: int) -> dict:
    """Train the 2-D energy model of preset ``ebm_2d``; its KL to the truth on the preset's grid."""
    s = preset("ebm_2d", profile)
    toy = toy_distribution(s["toy"])
    box = tuple(tuple(r) for r in s["range"])
    log_p_true, cell_area = grid_log_density(lambda x: -toy.log_prob(x), range=box, n=s["grid_n"])
    model, _, _, seconds = build_and_train_ebm("ebm_2d", s, toy.sample(s["n_train"], seed=seed),
                                               clamp=(min(r[0] for r in box), max(r[1] for r in box)), shape=(2,),
                                               device=device, seed=seed, progress=False)
    log_p_model, _ = grid_log_density(model.energy, range=box, n=s["grid_n"])
    uniform = torch.full_like(log_p_true, -math.log(log_p_true.numel() * cell_area))
    return {"model": f"MLP energy on {s['toy']}, SGLD-{s['sgld_steps']} + replay buffer",
            "epochs": s["epochs"], "train (s)": seconds,
            "KL(truth || model) (nats)": grid_kl(log_p_true, log_p_model.cpu(), cell_area),
            "KL(truth || uniform) (nats)": grid_kl(log_p_true, uniform, cell_area),
            "grid": f"{s['grid_n']}x{s['grid_n']}"}


def main(argv: list[str] | None = None) -> int:
    run = parse_args(argv, description=__doc__.split("\n\n")[0], script="bench_energy_models.py", topic="03",
                     choices=PARTS)

    def report(rows: list[dict]) -> str:
        return write_report(rows, run, title="Topic 03 benchmark", settings=(
            "`course_lib/presets/topic03.py` (the lecture's own); log-likelihoods in nats per image of binarized "
            "MNIST's 10,000 test images, log Z by annealed importance sampling from the base-rate model of the "
            "training pixels (Salakhutdinov & Murray 2008: about -86 with 500 hidden units and CD-25, -126 with "
            "CD-1, their figures); KL on a grid of the 2-D box, in nats"))

    benches = {"ising": bench_ising, "rbm": bench_rbm, "ebm_2d": lambda *a: [bench_ebm_2d(*a)]}
    run_parts(run, lambda part: benches[part](run.profile, run.device, run.seed), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
