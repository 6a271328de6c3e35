"""The Ising helpers: the energy against an explicit list of bonds, exact enumeration, Onsager's solution."""

import itertools
import math

import pytest
import torch

from course_lib.models import critical_temperature, exact_ising, ising_energy, magnetization, onsager_magnetization


def energy_by_bonds(lattice: list[list[int]], coupling: float, field: float) -> float:
    """E(s) = -J sum over the bonds (each site to its right and lower neighbour, periodic) - h sum s, by loops."""
    height, width = len(lattice), len(lattice[0])
    bonds = [((i, j), ((i + di) % height, (j + dj) % width))
             for i in range(height) for j in range(width) for di, dj in ((0, 1), (1, 0))]
    assert len(bonds) == 2 * height * width
    interaction = sum(lattice[a[0]][a[1]] * lattice[b[0]][b[1]] for a, b in bonds)
    return -coupling * interaction - field * sum(map(sum, lattice))


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (4, 6), (5, 3)])
def test_ising_energy_matches_a_sum_over_an_explicit_list_of_bonds(shape):
    g = torch.Generator().manual_seed(0)
    spins = torch.where(torch.rand(6, *shape, generator=g) < 0.5, 1.0, -1.0)
    energies = ising_energy(spins, coupling=0.7, field=-0.3)
    assert energies.shape == (6,)
    for lattice, energy in zip(spins.int().tolist(), energies.tolist(), strict=True):
        assert energy == pytest.approx(energy_by_bonds(lattice, 0.7, -0.3), abs=1e-5)


def test_ising_energy_of_ordered_and_antiferromagnetic_lattices_and_of_one_flipped_spin():
    L = 6
    up = torch.ones(1, L, L)
    assert float(ising_energy(up)) == -2 * L * L
    assert float(ising_energy(up, field=0.5)) == -2 * L * L - 0.5 * L * L
    checkerboard = (torch.arange(L)[:, None] + torch.arange(L)) % 2 * 2.0 - 1.0
    assert float(ising_energy(checkerboard[None])) == 2 * L * L
    flipped = up.clone()
    flipped[0, 2, 3] = -1
    assert float(ising_energy(flipped, field=0.5) - ising_energy(up, field=0.5)) == pytest.approx(8 + 2 * 0.5)
    assert magnetization(flipped).tolist() == pytest.approx([1 - 2 / L**2])
    assert ising_energy(up.long()).dtype == torch.get_default_dtype()


def test_exact_ising_agrees_with_brute_force_enumeration_on_the_2x2_and_3x3_lattices():
    for L in (2, 3):
        beta, coupling, field = 0.4, 1.3, 0.2
        weights, energies, abs_m = [], [], []
        for values in itertools.product((-1, 1), repeat=L * L):
            lattice = [list(values[i * L:(i + 1) * L]) for i in range(L)]
            energies.append(energy_by_bonds(lattice, coupling, field))
            weights.append(math.exp(-beta * energies[-1]))
            abs_m.append(abs(sum(values)) / L**2)
        z = sum(weights)
        exact = exact_ising(L, beta=beta, coupling=coupling, field=field)
        assert exact["log_z"] == pytest.approx(math.log(z), rel=1e-12)
        assert exact["mean_energy"] == pytest.approx(sum(w * e for w, e in zip(weights, energies, strict=True)) / z)
        assert exact["mean_abs_magnetization"] == pytest.approx(
            sum(w * m for w, m in zip(weights, abs_m, strict=True)) / z)
        assert exact["probabilities"].sum().item() == pytest.approx(1.0, abs=1e-12)
        assert exact["states"].shape == (2 ** (L * L), L, L)


def test_exact_ising_state_order_and_its_statistics():
    exact = exact_ising(4, beta=0.3)
    k = 0b1000_0000_0000_0101  # sites 0, 2 and 15 (raster order) up
    expected = -torch.ones(16, dtype=torch.float64)
    expected[[0, 2, 15]] = 1
    assert torch.equal(exact["states"][k].flatten(), expected)
    assert torch.allclose(exact["energies"], ising_energy(exact["states"]))
    assert torch.allclose(exact["magnetizations"], magnetization(exact["states"]))
    assert exact["mean_magnetization"] == pytest.approx(0.0, abs=1e-12)  # h = 0: symmetric under s -> -s


def test_exact_ising_log_partition_derivatives_are_the_energy_moments():
    # d log Z / d beta = -E[E], d^2 log Z / d beta^2 = Var[E].
    beta, eps = 0.35, 1e-4
    log_z = {b: exact_ising(4, beta=b, field=0.1)["log_z"] for b in (beta - eps, beta, beta + eps)}
    exact = exact_ising(4, beta=beta, field=0.1)
    assert (log_z[beta + eps] - log_z[beta - eps]) / (2 * eps) == pytest.approx(-exact["mean_energy"], rel=1e-6)
    second = (log_z[beta + eps] - 2 * log_z[beta] + log_z[beta - eps]) / eps**2
    assert second == pytest.approx(exact["energy_std"] ** 2, rel=1e-4)


def test_exact_ising_at_infinite_temperature_is_uniform_and_orders_when_cold():
    hot = exact_ising(3, beta=0.0)
    assert hot["log_z"] == pytest.approx(9 * math.log(2))
    n_up = torch.arange(10)
    binomial = torch.tensor([math.comb(9, int(k)) for k in n_up], dtype=torch.float64) / 2**9
    assert hot["mean_abs_magnetization"] == pytest.approx(float(binomial @ ((2 * n_up - 9).abs() / 9).double()))
    assert exact_ising(4, beta=2.0)["mean_abs_magnetization"] > 0.999
    assert exact_ising(4, beta=1.0, field=0.5)["mean_magnetization"] > 0.99


def test_critical_temperature_and_onsagers_magnetisation():
    t_c = critical_temperature()
    assert t_c == pytest.approx(2.269185314213022, rel=1e-12)
    assert critical_temperature(coupling=2.0) == pytest.approx(2 * t_c)
    assert onsager_magnetization(2.0) == pytest.approx((1 - math.sinh(1.0) ** -4) ** 0.125, rel=1e-12)
    assert onsager_magnetization(2.0) == pytest.approx(0.911319377877496)
    assert onsager_magnetization(0.5) == pytest.approx(1.0, abs=1e-6)
    assert onsager_magnetization(t_c * 1.0001) == 0.0 and onsager_magnetization(5.0) == 0.0
    assert 0 < onsager_magnetization(t_c * 0.9999) < 0.5  # it vanishes continuously at T_c, like (T_c - T)^(1/8)
    temperatures = torch.tensor([1.0, 2.0, 2.2, 2.5, 3.0])
    m = onsager_magnetization(temperatures)
    assert isinstance(m, torch.Tensor) and m.shape == (5,)
    assert torch.all(m[:-1] >= m[1:]) and m[3:].eq(0).all()
    assert onsager_magnetization(4.0, coupling=2.0) == pytest.approx(onsager_magnetization(2.0))


def test_ising_helpers_errors_name_the_bad_argument():
    with pytest.raises(ValueError, match="L must be an int"):
        exact_ising(5, beta=0.3)
    with pytest.raises(ValueError, match="L must be an int"):
        exact_ising(1, beta=0.3)
    with pytest.raises(ValueError, match="beta"):
        exact_ising(2, beta=-0.1)
    with pytest.raises(ValueError, match="temperature"):
        onsager_magnetization(0.0)
    with pytest.raises(ValueError, match="temperature"):
        onsager_magnetization(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="coupling"):
        critical_temperature(coupling=-1.0)
    with pytest.raises(ValueError, match=r"\(B, L, L\)"):
        ising_energy(torch.ones(4, 4))
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        magnetization(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="field"):
        ising_energy(torch.ones(1, 4, 4), field=math.inf)
