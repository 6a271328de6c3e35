"""The MCMC samplers leave their targets invariant: tests of the mathematics on tiny exact cases.

Each invariance test starts many independent chains (one per row) from exact draws of the
target, runs a few steps, and checks that the states are still distributed as the target:
moments within a few standard errors (computed from the number of chains), or a chi-square
test on a discrete distribution. Seeds are fixed, so each test is deterministic; the
thresholds are a few standard errors (or a chi-square p-value of 1e-3), and each check is
shown to fail on a sampler with the classic bug where that is cheap to do.
"""

import io
import math

import pytest
import torch
from scipy import stats
from torch import nn

from course_lib.models import (
    MCMCResult,
    ReplayBuffer,
    acceptance_probability,
    block_gibbs,
    checkerboard_gibbs,
    exact_ising,
    ising_energy,
    magnetization,
    mala,
    metropolis_hastings,
    sgld,
    sitewise_gibbs,
    ula,
)

N_CHAINS = 20_000
MIN_P_VALUE = 1e-3


def chi_square_p_value(observed: torch.Tensor, probabilities: torch.Tensor) -> float:
    """The p-value of Pearson's chi-square test of counts (K,) against probabilities (K,).

    Bins whose expected count is below 5 are pooled into one, as the test's approximation asks.
    """
    observed = observed.double()
    expected = probabilities.double() * observed.sum()
    small = expected < 5
    if small.any():
        observed = torch.cat([observed[~small], observed[small].sum().view(1)])
        expected = torch.cat([expected[~small], expected[small].sum().view(1)])
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(statistic, df=len(expected) - 1))


def assert_close_within(value: float, expected: float, standard_error: float, what: str, n_se: float = 4.0) -> None:
    assert abs(value - expected) < n_se * standard_error, (
        f"{what}: {value:.5f}, expected {expected:.5f} +- {n_se} x {standard_error:.5f}")


def gaussian_energy(scale: float):
    """E(x) = |x|^2 / (2 scale^2) of chains (B, d): the Gaussian N(0, scale^2 I)."""
    return lambda x: (x**2).sum(dim=1) / (2 * scale**2)


def check_gaussian_moments(x: torch.Tensor, variance: float, what: str) -> None:
    """Mean 0 and the given variance of every coordinate of x (B, d), within 4 standard errors."""
    n = x.shape[0]
    for d in range(x.shape[1]):
        assert_close_within(float(x[:, d].mean()), 0.0, math.sqrt(variance / n), f"{what}: mean of coordinate {d}")
        assert_close_within(float(x[:, d].var()), variance, variance * math.sqrt(2 / (n - 1)),
                            f"{what}: variance of coordinate {d}")


# ----------------------------------------------------------------------------- Metropolis-Hastings

TARGET = torch.tensor([0.10, 0.20, 0.30, 0.15, 0.25], dtype=torch.float64)
PROPOSAL = torch.tensor([0.40, 0.10, 0.10, 0.20, 0.20], dtype=torch.float64)


def discrete_energy(x: torch.Tensor) -> torch.Tensor:
    """E = -log p of states 0..4 stored as integers (B,)."""
    return -TARGET.log()[x]


def independence_proposal(x, generator, *, hastings=True):
    """Propose x' ~ PROPOSAL regardless of x: log q(x | x') - log q(x' | x) = log r(x) - log r(x')."""
    x_new = torch.multinomial(PROPOSAL, x.shape[0], replacement=True, generator=generator)
    ratio = PROPOSAL.log()[x] - PROPOSAL.log()[x_new]
    return x_new, ratio if hastings else 0.0


def test_acceptance_probability_is_min_of_one_and_the_ratio_and_never_overflows():
    g = torch.Generator().manual_seed(0)
    new, old, rev, fwd = torch.randn(4, 100, generator=g, dtype=torch.float64)
    expected = torch.minimum(torch.ones(100, dtype=torch.float64), torch.exp(new - old + rev - fwd))
    assert torch.allclose(acceptance_probability(new, old, rev, fwd), expected, rtol=1e-12, atol=0)
    extreme = acceptance_probability(torch.tensor([1e4, -1e4, -math.inf]), torch.tensor([0.0, 0.0, 0.0]))
    assert extreme.tolist() == [1.0, 0.0, 0.0]
    assert float(acceptance_probability(0.0, 0.0, 0.0, math.log(2.0))) == pytest.approx(0.5)


def test_metropolis_hastings_with_a_discrete_proposal_leaves_a_five_state_target_invariant():
    g = torch.Generator().manual_seed(1)
    start = torch.multinomial(TARGET, N_CHAINS, replacement=True, generator=g)
    result = metropolis_hastings(discrete_energy, start, proposal=independence_proposal, n_steps=3, generator=g)
    counts = torch.bincount(result.state, minlength=5)
    p_value = chi_square_p_value(counts, TARGET)
    assert p_value > MIN_P_VALUE, f"the chains left the target: counts {counts.tolist()}, p = {p_value:.2g}"
    assert 0 < result.acceptance_rate < 1
    assert result.state.dtype == torch.int64 and result.chain is None


def test_the_discrete_check_fails_when_the_hastings_correction_is_forgotten():
    g = torch.Generator().manual_seed(1)
    start = torch.multinomial(TARGET, N_CHAINS, replacement=True, generator=g)

    def wrong(x, generator):
        return independence_proposal(x, generator, hastings=False)

    result = metropolis_hastings(discrete_energy, start, proposal=wrong, n_steps=3, generator=g)
    assert chi_square_p_value(torch.bincount(result.state, minlength=5), TARGET) < 1e-6


def test_metropolis_hastings_converges_to_the_discrete_target_from_one_state():
    g = torch.Generator().manual_seed(2)
    start = torch.zeros(N_CHAINS, dtype=torch.int64)
    result = metropolis_hastings(discrete_energy, start, proposal=independence_proposal, n_steps=40, generator=g)
    assert chi_square_p_value(torch.bincount(result.state, minlength=5), TARGET) > MIN_P_VALUE


def test_random_walk_metropolis_leaves_a_gaussian_invariant_and_wider_steps_are_accepted_less():
    g = torch.Generator().manual_seed(3)
    scale = 2.0
    start = scale * torch.randn(N_CHAINS, 2, generator=g, dtype=torch.float64)
    result = metropolis_hastings(gaussian_energy(scale), start, step_size=2.0, n_steps=10, generator=g)
    check_gaussian_moments(result.state, scale**2, "random-walk Metropolis")
    wide = metropolis_hastings(gaussian_energy(scale), start, step_size=20.0, n_steps=2, generator=g)
    narrow = metropolis_hastings(gaussian_energy(scale), start, step_size=0.2, n_steps=2, generator=g)
    assert wide.acceptance_rate < result.acceptance_rate < narrow.acceptance_rate


def test_the_gaussian_check_fails_when_every_proposal_is_accepted():
    g = torch.Generator().manual_seed(3)
    start = 2.0 * torch.randn(N_CHAINS, 2, generator=g, dtype=torch.float64)

    def flat(x):  # the bug: a sampler that ignores the target accepts every move, and the chains diffuse
        return torch.zeros(x.shape[0], dtype=x.dtype)

    result = metropolis_hastings(flat, start, step_size=2.0, n_steps=10, generator=g)
    assert result.acceptance_rate == 1.0
    with pytest.raises(AssertionError, match="variance"):
        check_gaussian_moments(result.state, 4.0, "diffusing chains")


def test_metropolis_hastings_never_leaves_the_support():
    g = torch.Generator().manual_seed(4)

    def uniform_on_unit_interval(x):  # p = 1 on [0, 1], 0 elsewhere
        inside = ((x >= 0) & (x <= 1)).all(dim=1)
        return torch.where(inside, 0.0, math.inf).to(x.dtype)

    start = torch.rand(N_CHAINS, 1, generator=g, dtype=torch.float64)
    result = metropolis_hastings(uniform_on_unit_interval, start, step_size=0.5, n_steps=5, generator=g)
    x = result.state[:, 0]
    assert (x >= 0).all() and (x <= 1).all()
    assert_close_within(float(x.mean()), 0.5, math.sqrt(1 / 12 / N_CHAINS), "mean of U[0, 1]")


def test_samplers_return_the_chain_with_its_start_and_leave_the_input_alone():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(7, 3, generator=g)
    kept = x.clone()
    energy = gaussian_energy(1.0)
    for result in (metropolis_hastings(energy, x, step_size=0.5, n_steps=4, generator=g, return_chain=True),
                   ula(energy, x, step_size=0.1, n_steps=4, generator=g, return_chain=True),
                   mala(energy, x, step_size=0.1, n_steps=4, generator=g, return_chain=True),
                   sgld(energy, x, step_size=0.1, noise_std=0.01, n_steps=4, generator=g, return_chain=True)):
        assert isinstance(result, MCMCResult)
        assert result.chain.shape == (5, 7, 3)
        assert torch.equal(result.chain[0], x) and torch.equal(result.chain[-1], result.state)
        assert not result.state.requires_grad and result.state.dtype == x.dtype
    assert torch.equal(x, kept)


def test_the_same_generator_state_gives_the_same_chain():
    x = torch.randn(5, 2)
    runs = [mala(gaussian_energy(1.0), x, step_size=0.3, n_steps=5, generator=torch.Generator().manual_seed(9))
            for _ in range(2)]
    assert torch.equal(runs[0].state, runs[1].state) and runs[0].acceptance_rate == runs[1].acceptance_rate


def test_metropolis_hastings_errors_name_the_bad_argument():
    x = torch.zeros(4, 2)
    energy = gaussian_energy(1.0)
    with pytest.raises(ValueError, match="exactly one of step_size"):
        metropolis_hastings(energy, x)
    with pytest.raises(ValueError, match="exactly one of step_size"):
        metropolis_hastings(energy, x, step_size=1.0, proposal=independence_proposal)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="step_size"):
            metropolis_hastings(energy, x, step_size=bad)
    with pytest.raises(ValueError, match="non-finite"):
        metropolis_hastings(energy, torch.tensor([[0.0, math.nan]]), step_size=1.0)
    with pytest.raises(ValueError, match="n_steps"):
        metropolis_hastings(energy, x, step_size=1.0, n_steps=0)
    with pytest.raises(ValueError, match=r"one value per chain, shape \(4,\)"):
        metropolis_hastings(lambda z: z.sum(), x, step_size=1.0)
    with pytest.raises(ValueError, match="proposal must return states"):
        metropolis_hastings(energy, x, proposal=lambda z, g: (z[:2], 0.0))
    with pytest.raises(ValueError, match="starting state is not finite"):
        metropolis_hastings(lambda z: torch.full((z.shape[0],), math.inf), x, step_size=1.0)
    with pytest.raises(TypeError, match="floating-point"):
        metropolis_hastings(energy, torch.zeros(4, 2, dtype=torch.int64), step_size=1.0)
    with pytest.raises(TypeError, match="energy"):
        metropolis_hastings(42, x, step_size=1.0)


# ----------------------------------------------------------------------------- Langevin dynamics


def test_ula_on_a_gaussian_has_the_variance_of_its_ar1_chain_not_the_targets():
    # On E = x^2 / (2 s^2), ULA is x' = (1 - h / s^2) x + sqrt(2h) xi: stationary variance s^2 / (1 - h / (2 s^2)).
    g = torch.Generator().manual_seed(10)
    scale, step = 1.5, 0.5 * 1.5**2
    biased = scale**2 / (1 - step / (2 * scale**2))
    start = scale * torch.randn(N_CHAINS, 1, generator=g, dtype=torch.float64)
    result = ula(gaussian_energy(scale), start, step_size=step, n_steps=40, generator=g)
    check_gaussian_moments(result.state, biased, "ULA")
    assert result.acceptance_rate is None
    with pytest.raises(AssertionError, match="variance"):
        check_gaussian_moments(result.state, scale**2, "ULA against the target")


def test_mala_is_exact_on_a_gaussian_at_a_step_where_ula_is_biased():
    g = torch.Generator().manual_seed(11)
    scale, step = 1.5, 0.5 * 1.5**2
    start = scale * torch.randn(N_CHAINS, 1, generator=g, dtype=torch.float64)
    result = mala(gaussian_energy(scale), start, step_size=step, n_steps=20, generator=g)
    check_gaussian_moments(result.state, scale**2, "MALA")
    assert 0.5 < result.acceptance_rate < 1


def test_mala_leaves_a_correlated_gaussian_invariant():
    g = torch.Generator().manual_seed(12)
    cov = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=torch.float64)
    precision = torch.linalg.inv(cov)
    chol = torch.linalg.cholesky(cov)

    def energy(x):
        return 0.5 * ((x @ precision) * x).sum(dim=1)

    start = torch.randn(N_CHAINS, 2, generator=g, dtype=torch.float64) @ chol.T
    x = mala(energy, start, step_size=0.4, n_steps=10, generator=g).state
    empirical = torch.cov(x.T)
    for i in range(2):
        for j in range(2):
            se = math.sqrt((cov[i, i] * cov[j, j] + cov[i, j] ** 2) / N_CHAINS)
            assert_close_within(float(empirical[i, j]), float(cov[i, j]), se, f"MALA covariance [{i}, {j}]")


class QuadraticEnergy(nn.Module):
    """A model whose ``energy`` has a parameter: E(x) = a |x|^2 / 2."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def energy(self, x):
        return self.a * (x**2).sum(dim=1) / 2


def test_sgld_with_noise_sqrt_2_step_is_ula_and_gives_the_model_no_gradient():
    model = QuadraticEnergy()
    x = torch.randn(6, 2)
    a = ula(model, x, step_size=0.1, n_steps=3, generator=torch.Generator().manual_seed(0)).state
    b = sgld(model, x, step_size=0.1, noise_std=math.sqrt(0.2), n_steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b.state)
    assert model.a.grad is None and not b.state.requires_grad and b.acceptance_rate is None


def test_sgld_clips_gradients_entrywise_and_clamps_the_state_to_the_box():
    def steep(x):  # grad = 1e6 everywhere
        return 1e6 * x.sum(dim=1)

    x = torch.full((3, 4), 0.5)
    clipped = sgld(steep, x, step_size=1.0, noise_std=0.0, grad_clip=0.01)
    assert torch.allclose(clipped.state, x - 0.01)
    clamped = sgld(steep, x, step_size=1.0, noise_std=0.1, clamp=(0.0, 1.0), n_steps=3,
                   generator=torch.Generator().manual_seed(0), return_chain=True)
    assert (clamped.chain[1:] == 0.0).all()
    noisy = sgld(lambda z: 0 * z.sum(dim=1), x, step_size=1.0, noise_std=5.0, clamp=(0.0, 1.0), n_steps=2,
                 generator=torch.Generator().manual_seed(0))
    assert noisy.state.min() >= 0 and noisy.state.max() <= 1 and 0 < noisy.state.std()


def test_langevin_errors_name_the_bad_argument():
    x = torch.zeros(4, 2)
    energy = gaussian_energy(1.0)
    for bad in (0.0, -0.1, math.inf):
        with pytest.raises(ValueError, match="step_size"):
            ula(energy, x, step_size=bad)
        with pytest.raises(ValueError, match="step_size"):
            mala(energy, x, step_size=bad)
        with pytest.raises(ValueError, match="step_size"):
            sgld(energy, x, step_size=bad, noise_std=0.1)
    with pytest.raises(ValueError, match="noise_std"):
        sgld(energy, x, step_size=0.1, noise_std=-1.0)
    with pytest.raises(ValueError, match="clamp"):
        sgld(energy, x, step_size=0.1, noise_std=0.1, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="grad_clip"):
        sgld(energy, x, step_size=0.1, noise_std=0.1, grad_clip=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        ula(energy, torch.tensor([[math.inf, 0.0]]), step_size=0.1)
    with pytest.raises(ValueError, match=r"\(B, \.\.\.\)"):
        mala(energy, torch.zeros(0, 2), step_size=0.1)
    with pytest.raises(ValueError, match="does not depend differentiably on x"):
        ula(lambda z: torch.zeros(z.shape[0]), x, step_size=0.1)


# ----------------------------------------------------------------------------- replay buffer


class BufferHolder(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.buffer = ReplayBuffer(size=50, shape=(1, 3, 3), low=-1.0, high=1.0, reinit_prob=0.2, seed=seed)


def test_replay_buffer_is_saved_in_the_state_dict_and_continues_identically_after_reloading():
    holder = BufferHolder()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, idx = holder.buffer.draw(8, g)
        holder.buffer.push(x + 0.5, idx)
    assert "buffer.samples" in holder.state_dict()
    saved = io.BytesIO()
    torch.save({"model": holder.state_dict(), "generator": g.get_state()}, saved)
    saved.seek(0)
    checkpoint = torch.load(saved)
    resumed, g_resumed = BufferHolder(seed=1), torch.Generator()
    assert not torch.equal(resumed.buffer.samples, holder.buffer.samples)
    resumed.load_state_dict(checkpoint["model"])
    g_resumed.set_state(checkpoint["generator"])
    for _ in range(3):
        (x1, i1), (x2, i2) = holder.buffer.draw(8, g), resumed.buffer.draw(8, g_resumed)
        assert torch.equal(x1, x2) and torch.equal(i1, i2)
        holder.buffer.push(x1 * 0.9, i1)
        resumed.buffer.push(x2 * 0.9, i2)
    assert torch.equal(holder.buffer.samples, resumed.buffer.samples)


def test_replay_buffer_draws_distinct_slots_and_reinitialises_the_right_fraction():
    buffer = ReplayBuffer(size=4000, shape=(2,), low=0.0, high=1.0, reinit_prob=0.3)
    assert buffer.samples.min() >= 0 and buffer.samples.max() <= 1 and len(buffer) == 4000
    buffer.push(torch.full((4000, 2), -5.0), torch.arange(4000))
    x, idx = buffer.draw(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2) and idx.shape == (4000,) and len(set(idx.tolist())) == 4000
    fresh = (x != -5.0).all(dim=1)
    assert ((x >= 0) & (x <= 1)).all(dim=1).eq(fresh).all()
    assert_close_within(float(fresh.float().mean()), 0.3, math.sqrt(0.3 * 0.7 / 4000), "fraction reinitialised")
    x[:] = 7.0
    assert (buffer.samples == -5.0).all(), "draw must return a copy"
    noise = buffer.fresh(10, torch.Generator().manual_seed(1))
    assert noise.shape == (10, 2) and noise.min() >= 0 and noise.max() <= 1


def test_replay_buffer_follows_the_module_dtype_and_checks_its_arguments():
    buffer = ReplayBuffer(size=5, shape=(3,)).double()
    assert buffer.samples.dtype == torch.float64 and buffer.fresh(2).dtype == torch.float64
    with pytest.raises(ValueError, match="size"):
        ReplayBuffer(size=0, shape=(3,))
    with pytest.raises(ValueError, match="shape"):
        ReplayBuffer(size=5, shape=(3, 0))
    with pytest.raises(ValueError, match="low must be smaller than high"):
        ReplayBuffer(size=5, shape=(3,), low=1.0, high=0.0)
    with pytest.raises(ValueError, match="reinit_prob"):
        ReplayBuffer(size=5, shape=(3,), reinit_prob=1.5)
    with pytest.raises(ValueError, match="distinct"):
        buffer.draw(6)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        buffer.push(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="indices must lie in 0..4"):
        buffer.push(torch.zeros(2, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="non-finite"):
        buffer.push(torch.full((1, 3), math.nan), torch.tensor([0]))


# ----------------------------------------------------------------------------- Gibbs sampling on the Ising model


def exact_draws(exact: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    index = torch.multinomial(exact["probabilities"], n, replacement=True, generator=generator)
    return exact["states"][index].float()


def check_ising_distribution(spins: torch.Tensor, exact: dict, what: str, field: float = 0.0) -> None:
    """Mean energy and mean |m| within 4 standard errors, and chi-square tests of the energy and m distributions."""
    n = spins.shape[0]
    energy, m = ising_energy(spins.double(), field=field), magnetization(spins.double())
    assert_close_within(float(energy.mean()), exact["mean_energy"], exact["energy_std"] / math.sqrt(n),
                        f"{what}: mean energy")
    abs_m = exact["magnetizations"].abs()
    abs_m_std = math.sqrt(float(exact["probabilities"] @ abs_m**2) - exact["mean_abs_magnetization"] ** 2)
    assert_close_within(float(m.abs().mean()), exact["mean_abs_magnetization"], abs_m_std / math.sqrt(n),
                        f"{what}: mean |m|")
    for name, values, exact_values in (("energy", energy, exact["energies"]), ("m", m, exact["magnetizations"])):
        levels = exact_values.round(decimals=6).unique()  # (K,) sorted
        p_levels = torch.zeros(len(levels), dtype=torch.float64).index_add_(
            0, torch.searchsorted(levels, exact_values.round(decimals=6)), exact["probabilities"])
        observed = torch.bincount(torch.searchsorted(levels, values.round(decimals=6)), minlength=len(levels))
        assert observed.sum() == n and len(observed) == len(levels), f"{what}: {name} outside the exact levels"
        p_value = chi_square_p_value(observed, p_levels)
        assert p_value > MIN_P_VALUE, f"{what}: the distribution of {name} is not the exact one, p = {p_value:.2g}"


@pytest.mark.parametrize(("temperature", "field"), [(2.0, 0.0), (3.0, 0.0), (2.5, 0.3)])
def test_checkerboard_gibbs_leaves_the_4x4_ising_distribution_invariant(temperature, field):
    g = torch.Generator().manual_seed(20)
    exact = exact_ising(4, beta=1 / temperature, field=field)
    start = exact_draws(exact, N_CHAINS, g)
    result = checkerboard_gibbs(start, beta=1 / temperature, field=field, n_sweeps=3, generator=g)
    check_ising_distribution(result.state, exact, f"checkerboard Gibbs at T = {temperature}, h = {field}", field)


def test_the_ising_check_fails_for_a_sampler_at_the_wrong_temperature():
    g = torch.Generator().manual_seed(20)
    exact = exact_ising(4, beta=1 / 2.5)
    result = checkerboard_gibbs(exact_draws(exact, N_CHAINS, g), beta=1 / 2.3, n_sweeps=3, generator=g)
    with pytest.raises(AssertionError):
        check_ising_distribution(result.state, exact, "too cold")


def test_checkerboard_gibbs_mixes_from_an_ordered_start_and_runs_temperatures_side_by_side():
    g = torch.Generator().manual_seed(21)
    n = N_CHAINS // 2
    betas = torch.tensor([1 / 3.0, 1 / 5.0]).repeat_interleave(n // 2)
    # from all +1, the mean magnetisation decays like exp(-sweeps / 7) at T = 3: 60 sweeps bring it below 1e-3
    result = checkerboard_gibbs(torch.ones(n, 4, 4), beta=betas, n_sweeps=60, generator=g)
    check_ising_distribution(result.state[: n // 2], exact_ising(4, beta=1 / 3.0), "from all +1 at T = 3")
    check_ising_distribution(result.state[n // 2:], exact_ising(4, beta=1 / 5.0), "from all +1 at T = 5")


def test_sitewise_gibbs_is_the_checkerboard_chain_with_the_same_random_numbers():
    g = torch.Generator().manual_seed(22)
    spins = torch.where(torch.rand(5, 6, 8, generator=g) < 0.5, 1.0, -1.0)
    kept = spins.clone()
    beta = torch.tensor([0.2, 0.4, 0.44, 0.6, 1.0])
    fast = checkerboard_gibbs(spins, beta=beta, field=0.1, n_sweeps=4, generator=torch.Generator().manual_seed(3),
                              return_chain=True)
    slow = sitewise_gibbs(spins, beta=beta, field=0.1, n_sweeps=4, generator=torch.Generator().manual_seed(3),
                          return_chain=True)
    assert torch.equal(fast.chain, slow.chain) and fast.chain.shape == (5, 5, 6, 8)
    assert torch.equal(spins, kept) and not torch.equal(fast.state, spins)


def test_sitewise_gibbs_leaves_the_3x3_ising_distribution_invariant():
    g = torch.Generator().manual_seed(23)
    exact = exact_ising(3, beta=1 / 2.5)
    result = sitewise_gibbs(exact_draws(exact, N_CHAINS, g), beta=1 / 2.5, n_sweeps=2, generator=g)
    check_ising_distribution(result.state, exact, "site-wise Gibbs on the 3x3 lattice")


def test_ising_gibbs_errors_name_the_bad_argument():
    spins = torch.ones(2, 4, 4)
    with pytest.raises(ValueError, match="even lattice side"):
        checkerboard_gibbs(torch.ones(2, 5, 5), beta=0.4)
    with pytest.raises(ValueError, match=r"\(B, L, L\)"):
        checkerboard_gibbs(torch.ones(4, 4), beta=0.4)
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        checkerboard_gibbs(torch.zeros(2, 4, 4), beta=0.4)
    with pytest.raises(TypeError, match="floating-point"):
        sitewise_gibbs(torch.ones(2, 4, 4, dtype=torch.int64), beta=0.4)
    with pytest.raises(ValueError, match="beta"):
        checkerboard_gibbs(spins, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        checkerboard_gibbs(spins, beta=torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="n_sweeps"):
        checkerboard_gibbs(spins, beta=0.4, n_sweeps=0)
    with pytest.raises(ValueError, match="field"):
        sitewise_gibbs(spins, beta=0.4, field=math.nan)
    with pytest.raises(ValueError, match="at least 2x2"):
        sitewise_gibbs(torch.ones(2, 1, 1), beta=0.4)


# ----------------------------------------------------------------------------- block Gibbs on a tiny RBM


class TinyRBM:
    """A stand-in RBM with the two conditionals block_gibbs uses: E(v, h) = -v W h - b v - c h."""

    def __init__(self, generator):
        self.weight = 1.5 * torch.randn(3, 2, generator=generator, dtype=torch.float64)
        self.visible_bias = torch.randn(3, generator=generator, dtype=torch.float64)
        self.hidden_bias = torch.randn(2, generator=generator, dtype=torch.float64)

    def sample_hidden(self, v, generator=None):
        probs = torch.sigmoid(self.hidden_bias + v @ self.weight)
        return probs, (torch.rand(probs.shape, generator=generator, dtype=probs.dtype) < probs).to(probs.dtype)

    def sample_visible(self, h, generator=None):
        probs = torch.sigmoid(self.visible_bias + h @ self.weight.T)
        return probs, (torch.rand(probs.shape, generator=generator, dtype=probs.dtype) < probs).to(probs.dtype)

    def exact_visible_distribution(self):
        """p(v) of the 8 visible states (state k has v_i = bit i of k), from the joint over all (v, h)."""
        bits = lambda n: ((torch.arange(2**n)[:, None] >> torch.arange(n)) & 1).double()  # noqa: E731
        v, h = bits(3), bits(2)
        log_joint = v @ self.weight @ h.T + (v @ self.visible_bias)[:, None] + (h @ self.hidden_bias)[None, :]
        return torch.softmax(log_joint.logsumexp(dim=1), dim=0), v


def visible_state_index(v):
    return (v.long() << torch.arange(v.shape[1])).sum(dim=1)


def test_block_gibbs_leaves_a_tiny_rbms_visible_distribution_invariant_and_converges_to_it():
    g = torch.Generator().manual_seed(30)
    rbm = TinyRBM(g)
    p_v, states = rbm.exact_visible_distribution()
    start = states[torch.multinomial(p_v, N_CHAINS, replacement=True, generator=g)]
    kept = start.clone()
    result = block_gibbs(rbm, start, n_steps=2, generator=g)
    counts = torch.bincount(visible_state_index(result.state), minlength=8)
    p_value = chi_square_p_value(counts, p_v)
    assert p_value > MIN_P_VALUE, f"block Gibbs left p(v): counts {counts.tolist()}, p = {p_value:.2g}"
    assert torch.equal(start, kept) and result.acceptance_rate is None
    from_zero = block_gibbs(rbm, torch.zeros(N_CHAINS, 3, dtype=torch.float64), n_steps=30, generator=g,
                            return_chain=True)
    assert from_zero.chain.shape == (31, N_CHAINS, 3)
    assert chi_square_p_value(torch.bincount(visible_state_index(from_zero.state), minlength=8), p_v) > MIN_P_VALUE


def test_the_rbm_check_fails_for_a_chain_that_skips_the_hidden_layer():
    g = torch.Generator().manual_seed(30)
    rbm = TinyRBM(g)
    p_v, states = rbm.exact_visible_distribution()
    start = states[torch.multinomial(p_v, N_CHAINS, replacement=True, generator=g)]

    class Broken(TinyRBM):  # the bug: v is drawn with the hidden units switched off
        def sample_visible(self, h, generator=None):
            return super().sample_visible(torch.zeros_like(h), generator)

    broken = Broken.__new__(Broken)
    broken.__dict__.update(rbm.__dict__)
    result = block_gibbs(broken, start, n_steps=2, generator=g)
    assert chi_square_p_value(torch.bincount(visible_state_index(result.state), minlength=8), p_v) < 1e-6


def test_block_gibbs_errors_name_the_bad_argument():
    rbm = TinyRBM(torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="sample_hidden"):
        block_gibbs(object(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(B, n_visible\)"):
        block_gibbs(rbm, torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="n_steps"):
        block_gibbs(rbm, torch.zeros(2, 3), n_steps=0)
