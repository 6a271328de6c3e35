"""What the course's task classes share (course_lib/training/task_common.py)."""

import math

import pytest
import torch

from course_lib.training.task_common import (
    TaskGenerator,
    batch_inputs,
    check_lr_schedule,
    check_number,
    lr_decay,
    with_lr_schedule,
)


def test_batch_inputs_are_the_batch_or_its_first_element():
    x = torch.zeros(3, 2)
    assert batch_inputs(x) is x and batch_inputs((x, torch.ones(3))) is x and batch_inputs([x]) is x
    with pytest.raises(ValueError, match="empty tuple/list as a batch"):
        batch_inputs(())


@pytest.mark.parametrize(("value", "low", "strict", "message"), [
    (0.0, 0.0, True, "lr must be a finite number > 0, got 0.0"),
    (-1.0, 0.0, False, "lr must be a finite number >= 0, got -1.0"),
    (math.nan, None, False, "lr must be a finite number, got nan"),
    (True, None, False, "lr must be a finite number, got True"),
    ("1", None, False, "lr must be a finite number, got '1'"),
])
def test_check_number_names_the_setting_and_its_bound(value, low, strict, message):
    with pytest.raises(ValueError, match=message):
        check_number("lr", value, low=low, strict=strict)
    assert check_number("lr", 2, low=0.0, strict=True) == 2.0


def test_a_decay_needs_its_total_steps_and_an_allowed_name():
    check_lr_schedule("constant", None, ("constant", "cosine"))
    check_lr_schedule("cosine", 10, ("constant", "cosine"))
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        check_lr_schedule("linear", 10, ("constant", "cosine"))
    with pytest.raises(ValueError, match="lr_schedule='cosine' needs total_steps"):
        check_lr_schedule("cosine", 0, ("constant", "cosine"))


@pytest.mark.parametrize(("decay", "halfway"), [("cosine", 0.5), ("linear", 0.5)])
def test_decays_reach_zero_after_total_steps(decay, halfway):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = lr_decay(optimizer, decay, 4)
    lrs = []
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[1] == pytest.approx(halfway) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert with_lr_schedule(optimizer, "constant", None) is optimizer
    _, schedule = with_lr_schedule(optimizer, "linear", 4)
    assert schedule["interval"] == "step"
    with pytest.raises(ValueError, match="unknown learning-rate decay 'step'"):
        lr_decay(optimizer, "step", 4)


def test_task_generator_is_seeded_carried_and_says_when_it_cannot_be_restored():
    carried = TaskGenerator(seed=5)
    assert carried.state() == {"device": None, "generator": None}
    first = torch.rand(3, generator=carried.on("cpu"))
    assert torch.equal(first, torch.rand(3, generator=torch.Generator().manual_seed(5)))
    saved = carried.state()
    after = torch.rand(3, generator=carried.on("cpu"))
    resumed = TaskGenerator(seed=5)
    resumed.load(saved)
    assert resumed.state()["device"] == "cpu"
    assert torch.equal(torch.rand(3, generator=resumed.on("cpu")), after), "a restored generator continues its stream"
    foreign = TaskGenerator(seed=5)
    foreign.load({"device": "cuda", "generator": saved["generator"]})
    with pytest.warns(UserWarning, match="saved on cuda and cannot be restored on cpu"):
        foreign.on("cpu")
