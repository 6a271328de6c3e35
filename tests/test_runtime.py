import time

import pytest
import torch

from course_lib.runtime import PROFILES, describe_hardware, get_device, resolve_profile, seed_everything, timed


def test_profile_parameter_wins_over_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    assert resolve_profile("smoke") == "smoke"


def test_profile_falls_back_to_environment_then_hardware(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert resolve_profile(None) == "cpu"
    monkeypatch.delenv("COURSE_PROFILE")
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert resolve_profile(None) == expected


def test_unknown_profile_is_named_in_the_error(monkeypatch):
    with pytest.raises(ValueError, match="'fast'.*smoke, cpu, gpu"):
        resolve_profile("fast")
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    with pytest.raises(ValueError, match=r"'laptop' from \$COURSE_PROFILE"):
        resolve_profile()


def test_profiles_are_ordered_small_to_large():
    assert PROFILES == ("smoke", "cpu", "gpu")


def test_device_on_this_machine_and_forced_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    dev = get_device()
    assert dev.type in {"cuda", "mps", "cpu"}
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_missing_cuda_is_an_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device("cuda")


def test_seed_everything_makes_runs_repeatable():
    g1 = seed_everything(123)
    a = torch.randn(5), torch.randperm(10, generator=g1)
    g2 = seed_everything(123)
    b = torch.randn(5), torch.randperm(10, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything(1.5)


def test_describe_hardware_names_cores_and_torch():
    text = describe_hardware()
    assert "logical cores" in text and torch.__version__ in text


def test_env_flag_reads_yes_and_no_and_names_a_bad_value(monkeypatch):
    from course_lib.runtime import STATIC_WIDGETS_ENV, env_flag, static_widgets

    for text, expected in [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                           ("0", False), ("false", False), ("No", False), ("", False)]:
        monkeypatch.setenv(STATIC_WIDGETS_ENV, text)
        assert static_widgets() is expected, text
    monkeypatch.delenv(STATIC_WIDGETS_ENV)
    assert static_widgets() is False
    monkeypatch.setenv(STATIC_WIDGETS_ENV, "maybe")
    with pytest.raises(ValueError, match="COURSE_STATIC_WIDGETS is 'maybe'"):
        env_flag(STATIC_WIDGETS_ENV)


def test_timed_returns_the_result_and_the_best_of_its_repeats():
    calls = []

    def work():
        calls.append(time.perf_counter())
        time.sleep(0.01 if len(calls) == 1 else 0.0)
        return len(calls)

    out, seconds = timed(work, "cpu", repeats=3)
    assert out == 3 and len(calls) == 3
    assert 0.0 <= seconds < 0.01, "the best of the three calls is the fast one"
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        timed(work, repeats=0)
