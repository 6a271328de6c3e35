"""Benchmark of topic 02 (sparse coding and autoencoders): speed of the solvers and quality of the models.

With the settings of a profile (``course_lib.presets.topic02``, the lecture's own), it measures

* dictionary learning on whitened patches of scikit-learn's sample images: time and the
  held-out objective :math:`\\frac12\\lVert x - Da\\rVert^2 + \\lambda\\lVert a\\rVert_1` per patch;
* FISTA against scikit-learn's ``sparse_encode`` (coordinate-descent lasso) on the same batch of
  patches and the learned dictionary: the time each takes to reach the same mean objective
  (FISTA's iterations are doubled until its mean objective is within ``SAME_OBJECTIVE`` relative
  of scikit-learn's, or below it), and the speed ratio;
* LISTA (a feed-forward encoder of the codes): its objective against FISTA's at the preset's
  iterations, and the speed-up of one pass over FISTA;
* the deep autoencoder against PCA with the same code size on MNIST: test squared error per
  image (all 10,000 test images), training time;
* semantic hashing: precision at 10 of the binary codes (Hamming distance; test queries against
  training images) against random projections of the same length;

and writes a markdown table with the hardware to ``benchmarks/RESULTS-02-<profile>.md``. It is a
measurement, not a test: run it on an idle machine. Usage::

    python benchmarks/bench_sparse_coding_autoencoders.py --profile cpu
    python benchmarks/bench_sparse_coding_autoencoders.py --profile gpu --parts deep_ae,semantic_hashing
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
from measure import parse_args, run_parts, write_report
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning

from course_lib.data import load_image_patches, load_mnist, make_loader
from course_lib.metrics import precision_at_k
from course_lib.models import LISTA, PCA, RandomProjectionHash, fista, lasso_objective, learn_dictionary
from course_lib.presets import build_and_train_reconstruction, build_model, preset
from course_lib.runtime import timed
from course_lib.training import train

SAME_OBJECTIVE = 1e-4
"""Two mean objectives within this relative difference count as the same (the tests' tolerance against scikit-learn)."""

PARTS = ("sparse_coding", "lista", "deep_ae", "semantic_hashing")
"""What can be measured; ``lista`` needs the dictionary of ``sparse_coding`` and runs it first if asked alone."""


def _patches(profile: str, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whitened training and held-out patches of the ``sparse_coding`` preset."""
    s = preset("sparse_coding", profile)
    x, _ = load_image_patches(s["n_train"] + s["n_test"], patch_size=s["patch_size"], eps=s["whitening_eps"],
                              seed=seed)
    x = x.to(device)
    return x[: s["n_train"]], x[s["n_train"] :]


def bench_dictionary(profile: str, device: torch.device, seed: int) -> tuple[dict, dict]:
    """Learn the dictionary, then race FISTA against scikit-learn's lasso on the same patches."""
    s = preset("sparse_coding", profile)
    x_train, x_test = _patches(profile, device, seed)
    lam, n_iter = s["model"]["lam"], s["model"]["n_iter"]
    torch.manual_seed(seed)
    start_dictionary = build_model("sparse_coding", s).dictionary.detach().to(device)
    (D, _), seconds = timed(lambda: learn_dictionary(
        x_train, n_atoms=s["model"]["n_atoms"], lam=lam, n_steps=s["n_steps"], batch_size=s["batch_size"],
        n_iter=n_iter, init=start_dictionary, generator=torch.Generator().manual_seed(seed)), device)
    with torch.no_grad():
        held_out = float(lasso_objective(x_test, D, fista(x_test, D, lam, n_iter=n_iter), lam).mean())
        at_start = float(lasso_objective(x_test, start_dictionary, fista(x_test, start_dictionary, lam, n_iter=n_iter),
                                         lam).mean())
    d, k = D.shape
    dictionary_row = {
        "experiment": "dictionary learning",
        "patches": f"{len(x_train):,} train / {len(x_test):,} held out, {d} dims",
        "atoms": f"{k} ({k / d:.0f}x over-complete)",
        "lambda": lam,
        "steps x batch": f"{s['n_steps']:,} x {s['batch_size']}",
        "held-out objective (random atoms)": at_start,
        "held-out objective (learned)": held_out,
        "train time (s)": seconds,
    }

    # FISTA against scikit-learn's coordinate descent, on n_timing patches, to the same objective
    n_timing = preset("fista_vs_ista", profile)["n_timing"]
    x = torch.cat([x_test, x_train])[:n_timing]
    x64, D64 = x.double().cpu().numpy(), D.double().cpu().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        codes_sk, seconds_sk = timed(lambda: sparse_encode(x64, D64.T, algorithm="lasso_cd", alpha=lam,
                                                            n_jobs=torch.get_num_threads()), device)
    objective_sk = float(lasso_objective(torch.from_numpy(x64), torch.from_numpy(D64),
                                         torch.from_numpy(np.asarray(codes_sk)), lam).mean())
    iterations = 10
    while True:
        codes, seconds_fista = timed(lambda n=iterations: fista(x, D, lam, n_iter=n), device, repeats=2)
        objective_fista = float(lasso_objective(x, D, codes, lam).double().mean())
        if objective_fista <= objective_sk * (1 + SAME_OBJECTIVE) or iterations >= 20_000:
            break
        iterations *= 2
    _, seconds_100 = timed(lambda: fista(x, D, lam, n_iter=100), device, repeats=2)
    fista_row = {
        "experiment": "FISTA vs scikit-learn lasso",
        "patches": f"{len(x):,}",
        "atoms": f"{k}",
        "lambda": lam,
        "sklearn sparse_encode (lasso_cd) objective": objective_sk,
        "sklearn time (s)": seconds_sk,
        "sklearn jobs": torch.get_num_threads(),
        "FISTA iterations to reach it": iterations,
        "FISTA objective": objective_fista,
        "relative gap": objective_fista / objective_sk - 1,
        "FISTA time (s)": seconds_fista,
        "speed ratio (x)": seconds_sk / seconds_fista,
        "FISTA 100 iterations (s)": seconds_100,
    }
    return dictionary_row, fista_row | {"_D": D, "_x": (x_train, x_test)}


def bench_lista(profile: str, device: torch.device, seed: int, D: torch.Tensor,
                data: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Train LISTA on FISTA's codes of the learned dictionary; compare objectives and speed."""
    s = preset("lista", profile)
    x_train, x_test = data
    x_train, x_test = x_train[: s["n_train"]], x_test[: s["n_test"]]
    arguments = dict(s["model"])
    lam = arguments.pop("lam")
    arguments.pop("n_features"), arguments.pop("n_atoms")
    torch.manual_seed(seed)
    model = LISTA.from_dictionary(D, lam, **arguments)
    with torch.no_grad():
        targets = fista(x_train, D, lam, n_iter=s["fista_iter"])
    history = train(model, make_loader((x_train, targets), s["batch_size"], shuffle=True,
                                       generator=torch.Generator().manual_seed(seed)),
                    make_loader(x_test, 2_000), epochs=s["epochs"], device=device, seed=seed,
                    max_steps_per_epoch=s["max_steps_per_epoch"], desc="LISTA", progress=False)
    x = torch.cat([x_test, x_train])[: s["n_timing"]]
    with torch.no_grad():
        codes_lista, seconds_lista = timed(lambda: model.encode(x), device, repeats=3)
        codes_fista, seconds_fista = timed(lambda: fista(x, D, lam, n_iter=s["fista_iter"]), device, repeats=3)
        objective_lista = float(lasso_objective(x, D, codes_lista, lam).mean())
        objective_fista = float(lasso_objective(x, D, codes_fista, lam).mean())
    return {
        "experiment": f"LISTA, {s['model']['n_layers']} layers",
        "patches": f"{len(x):,}",
        "train time (s)": history.train_seconds,
        "LISTA objective": objective_lista,
        f"FISTA objective ({s['fista_iter']} iterations)": objective_fista,
        "objective ratio (LISTA / FISTA)": objective_lista / objective_fista,
        "LISTA time (s)": seconds_lista,
        "FISTA time (s)": seconds_fista,
        "speed-up (x)": seconds_fista / seconds_lista,
    }


def _mnist(split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist(split, subset=n)
    return images.flatten(1).float().div(255.0), labels


@torch.no_grad()
def _error(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> float:
    """Mean over the images of x of the squared error summed over the pixels."""
    return float(torch.cat([model.loss(x[i : i + 2_000].to(device)).cpu() for i in range(0, len(x), 2_000)]).mean())


def bench_deep_ae(profile: str, device: torch.device, seed: int) -> dict:
    """The deep autoencoder against PCA with the same code size, on all the test images."""
    s = preset("deep_ae", profile)
    x_train, _ = _mnist("train", s["n_train"])
    x_test, _ = _mnist("test", None)
    model, history = build_and_train_reconstruction("deep_ae", s, x_train, x_test[: s["n_test"]], device=device,
                                                    seed=seed, progress=False)
    k = s["model"]["sizes"][-1]
    pca = PCA(n_components=k).fit(x_train).to(device)
    ae, linear = _error(model, x_test, device), _error(pca, x_test, device)
    return {
        "experiment": "deep AE " + "-".join(map(str, s["model"]["sizes"])) + " vs PCA",
        "train images": len(x_train),
        "epochs": s["epochs"],
        "train time (s)": history.train_seconds,
        "deep AE test error (per image)": ae,
        f"PCA-{k} test error (per image)": linear,
        "PCA / deep AE (x)": linear / ae,
        "published": "3.00 vs 13.87 (Hinton & Salakhutdinov 2006, RBM pretraining, their preprocessing)",
    }


def bench_semantic_hashing(profile: str, device: torch.device, seed: int) -> dict:
    """Precision at 10 of the binary codes against random projections of the same length."""
    s = preset("semantic_hashing", profile)
    n_train = max(s["n_train"] or 60_000, s["n_database"])
    x_train, y_train = _mnist("train", n_train)
    x_test, y_test = _mnist("test", None)
    model, history = build_and_train_reconstruction(
        "semantic_hashing", s, x_train[: s["n_train"]] if s["n_train"] else x_train, x_test[: s["n_test"]],
        device=device, seed=seed, progress=False)
    database, db_labels = x_train[: s["n_database"]], y_train[: s["n_database"]]
    queries, q_labels = x_test[: s["n_queries"]], y_test[: s["n_queries"]]
    n_bits = s["model"]["sizes"][-1]
    with torch.no_grad():
        db_codes = torch.cat([model.binary_codes(database[i : i + 2_000].to(device)).cpu()
                              for i in range(0, len(database), 2_000)])
        q_codes = model.binary_codes(queries.to(device)).cpu()
    lsh = RandomProjectionHash(n_features=784, n_bits=n_bits, seed=seed).fit(database)
    ours = precision_at_k(q_codes, q_labels, db_codes, db_labels, 10)
    theirs = precision_at_k(lsh.codes(queries), q_labels, lsh.codes(database), db_labels, 10)
    return {
        "experiment": f"semantic hashing, {n_bits} bits",
        "train images": s["n_train"] or len(x_train),
        "epochs": s["epochs"],
        "train time (s)": history.train_seconds,
        "database / queries": f"{len(database):,} train / {len(queries):,} test",
        "precision@10 (autoencoder)": ours,
        "precision@10 (random projections)": theirs,
    }


def main(argv: list[str] | None = None) -> int:
    run = parse_args(argv, description=__doc__.split("\n\n")[0], script="bench_sparse_coding_autoencoders.py",
                     topic="02", choices=PARTS)

    def report(rows: list[dict]) -> str:
        return write_report(rows, run, title="Topic 02 benchmark", settings=(
            "`course_lib/presets/topic02.py` (the lecture's own); objective: 1/2 ||x - D a||^2 + lambda ||a||_1"
            " per whitened 8x8 patch; reconstruction errors: squared error summed over the 784 pixels in [0, 1], per "
            "MNIST test image"))

    profile, device, seed = run.profile, run.device, run.seed
    dictionary = None

    def measure(part: str) -> list[dict]:
        nonlocal dictionary
        new = []
        if part in ("sparse_coding", "lista") and dictionary is None:
            dictionary_row, fista_row = bench_dictionary(profile, device, seed)
            dictionary = (fista_row.pop("_D"), fista_row.pop("_x"))
            new = [dictionary_row, fista_row]  # once, for whichever of the two comes first
        if part == "lista":
            new.append(bench_lista(profile, device, seed, *dictionary))
        elif part == "deep_ae":
            new.append(bench_deep_ae(profile, device, seed))
        elif part == "semantic_hashing":
            new.append(bench_semantic_hashing(profile, device, seed))
        return new

    run_parts(run, measure, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
