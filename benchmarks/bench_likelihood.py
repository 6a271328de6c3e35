"""Benchmark of topic 01's likelihood models: quality, training cost and sampling speed.

Builds and trains the headline models with the settings of a profile
(``course_lib.presets.topic01``, through the same factory as the lecture), then measures

* test NLL on binarized MNIST in nats per image (and bits/dim), on the preset's test
  subset and on the full 10,000-image test set,
* training time (s) and throughput (training images per second),
* sampling speed: images (or characters) per second, and the speed-up of the fast
  samplers (PixelCNN's cropped passes, WaveNet's cached queues) over the naive ones,

and writes a markdown table with the hardware it ran on to
``benchmarks/RESULTS-01-<profile>.md``. It is a measurement, not a test: run it on an idle
machine. Usage::

    python benchmarks/bench_likelihood.py --profile cpu
    python benchmarks/bench_likelihood.py --profile gpu --models made,gated_pixelcnn
"""

from __future__ import annotations

import math
import sys

import torch
from measure import parse_args, run_parts, write_report

from course_lib.data import CharVocab, char_dataset, load_binarized_mnist, load_tiny_shakespeare, make_loader
from course_lib.metrics import nats_to_bits_per_dim
from course_lib.presets import build_and_fit, preset
from course_lib.runtime import seed_everything, timed
from course_lib.training import evaluate

MODELS = ("made", "pixelcnn", "gated_pixelcnn", "wavenet")
PUBLISHED = {"made": "88.40 (Germain et al. 2015)", "pixelcnn": "81.30 (van den Oord et al. 2016a)",
             "gated_pixelcnn": "81.30 (PixelCNN, van den Oord et al. 2016a)"}


def bench_image_model(name: str, profile: str, device: torch.device, seed: int) -> dict:
    """Train one binarized-MNIST model with its preset; measure NLL, cost and sampling speed."""
    s = preset(name, profile)
    seed_everything(seed)
    x_train = load_binarized_mnist("train", subset=s["n_train"])
    x_test = load_binarized_mnist("test", subset=s["n_test"])
    x_test_full = load_binarized_mnist("test")
    model, history = build_and_fit(name, s, x_train, x_test, n_dims=784, device=device, seed=seed, desc=name,
                                   progress=False)
    full = evaluate(model, make_loader(x_test_full, 500, device=device), device=device)
    row = {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "train images": len(x_train),
        "epochs": s["epochs"],
        "test NLL (nats/image)": history.test_nats[-1],
        "test images": len(x_test),
        "full test NLL (nats/image)": full,
        "full test bits/dim": float(nats_to_bits_per_dim(full, 784)),
        "published (nats/image)": PUBLISHED[name],
        "train time (s)": history.train_seconds,
        "train images/s": len(x_train) * s["epochs"] / history.train_seconds,
    }
    gen = torch.Generator().manual_seed(seed)
    if name == "made":
        n = 16
        _, seconds = timed(lambda: model.sample(n, image_shape=(1, 28, 28), generator=gen), device)
        row["samples/s"] = n / seconds
    else:
        n = s["n_timing"] if "n_timing" in s else 2
        _, slow = timed(lambda: model.sample(n, generator=gen, fast=False), device)
        _, fast = timed(lambda: model.sample(n, generator=gen, fast=True), device)
        row["samples/s"] = n / fast
        row["naive samples/s"] = n / slow
        row["sampler speed-up (x)"] = slow / fast
    return row


def bench_wavenet(profile: str, device: torch.device, seed: int) -> dict:
    """Train the character model on Tiny Shakespeare; compare the naive and cached samplers."""
    s = preset("wavenet", profile)
    seed_everything(seed)
    text = load_tiny_shakespeare()
    vocab = CharVocab(text)
    train = char_dataset(text, s["seq_len"], vocab, split="train").tensors[0]  # (N, seq_len) int64
    test = char_dataset(text, s["seq_len"], vocab, split="test").tensors[0]
    train = train[: s["n_train"]] if s["n_train"] else train
    test = test[: s["n_test"]] if s["n_test"] else test
    model, history = build_and_fit("wavenet", s, train, test, n_dims=s["seq_len"],
                                   model_args={"vocab_size": len(vocab)}, device=device, seed=seed, desc="wavenet",
                                   progress=False)
    length = s["timing_length"]
    seconds = {}
    for fast in (False, True):
        model.sample(1, length=8, generator=torch.Generator().manual_seed(seed), fast=fast)  # warm-up
        _, seconds[fast] = timed(lambda f=fast: model.sample(1, length=length, fast=f,
                                                              generator=torch.Generator().manual_seed(seed)), device)
    slow, fast = seconds[False], seconds[True]
    return {
        "model": "wavenet",
        "train chunks": len(train),
        "params": sum(p.numel() for p in model.parameters()),
        "receptive field (chars)": model.receptive_field,
        "test bits/char": history.test_bpd[-1],
        "train time (s)": history.train_seconds,
        "cached chars/s": length / fast,
        "naive chars/s": length / slow,
        "sampler speed-up (x)": slow / fast,
    }


def main(argv: list[str] | None = None) -> int:
    run = parse_args(argv, description=__doc__.split("\n\n")[0], script="bench_likelihood.py", topic="01",
                     choices=MODELS, option="models")

    def report(rows: list[dict]) -> str:
        return write_report(rows, run, title="Topic 01 benchmark", group=lambda row: row["model"] == "wavenet",
                            settings="`course_lib/presets/topic01.py` (the lecture's own); data: binarized MNIST "
                                     "(Larochelle & Murray), test NLL in nats per image; Tiny Shakespeare in bits "
                                     "per character")

    def measure(name: str) -> list[dict]:
        if name == "wavenet":
            return [bench_wavenet(run.profile, run.device, run.seed)]
        return [bench_image_model(name, run.profile, run.device, run.seed)]

    rows = run_parts(run, measure, report)
    return 0 if all(math.isfinite(r.get("test NLL (nats/image)", 0.0)) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
