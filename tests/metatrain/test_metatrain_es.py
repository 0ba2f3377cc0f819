"""Antithetic ES: unbiased on a quadratic, converges, resumes exactly, survives NaN."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from models.metatrain.es import ESConfig, estimate_gradient, load_state, run_es

TARGET = np.array([1.0, -2.0, 0.5])


def noisy_quadratic(theta: np.ndarray, seed: int) -> float:
    """A quadratic plus seed-dependent noise that common random numbers cancel."""
    noise = np.random.default_rng(seed).normal() * 0.1
    return float(np.sum((theta - TARGET) ** 2) + noise)


def nan_sometimes(theta: np.ndarray, seed: int) -> float:
    return float("nan") if seed % 5 == 0 else float(np.sum(theta ** 2))


def test_gradient_estimate_is_unbiased_on_a_quadratic():
    rng = np.random.default_rng(0)
    theta = np.array([0.3, 0.1, -0.4])
    sigma = np.full(3, 0.05)
    eps = rng.standard_normal((20000, 3)) * sigma
    f = lambda t: np.sum((t - TARGET) ** 2, axis=-1)  # noqa: E731
    g = estimate_gradient(f(theta + eps), f(theta - eps), eps, sigma)
    # std of each component ~ 2|a|/sqrt(N) ~ 0.04 here
    np.testing.assert_allclose(g, 2 * (theta - TARGET), atol=0.15)


def test_relative_shaping_weighs_tasks_by_their_relative_change():
    """Two tasks on one coordinate: task A's loss is 10x task B's and pulls the other way.
    Plain differences follow A; relative shaping is the gradient of log A + log B."""
    rng = np.random.default_rng(1)
    sigma = np.array([0.01])
    eps = rng.standard_normal((20000, 1)) * sigma
    theta = 0.0
    a = lambda t: 10.0 * (1.0 + 0.1 * t)  # noqa: E731  d log a / dt ~ +0.1
    b = lambda t: 1.0 - 0.3 * t           # noqa: E731  d log b / dt = -0.3
    task = np.arange(eps.shape[0]) % 2 == 0
    fp = np.where(task, a(theta + eps[:, 0]), b(theta + eps[:, 0]))
    fm = np.where(task, a(theta - eps[:, 0]), b(theta - eps[:, 0]))
    plain = estimate_gradient(fp, fm, eps, sigma)
    rel = estimate_gradient(fp, fm, eps, sigma, "relative")
    np.testing.assert_allclose(plain, [(1.0 - 0.3) / 2], rtol=0.05)   # A's +1 wins
    np.testing.assert_allclose(rel, [(0.1 - 0.3) / 2], rtol=0.05)     # B's -0.3 wins
    with pytest.raises(ValueError, match="shaping must be one of difference, relative"):
        estimate_gradient(fp, fm, eps, sigma, "rank")


def test_es_converges_with_common_random_numbers():
    cfg = ESConfig(iterations=150, pairs=8, sigma=0.05, lr=0.05, workers=1)
    st = run_es(noisy_quadratic, np.zeros(3), cfg)
    np.testing.assert_allclose(st.theta, TARGET, atol=0.15)
    assert st.history[-1]["meta_loss"] < st.history[0]["meta_loss"]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = run_es(noisy_quadratic, np.zeros(3), ESConfig(iterations=12, workers=1, sigma=0.05))
    ck = tmp_path / "state.json"
    log = tmp_path / "log.csv"
    run_es(noisy_quadratic, np.zeros(3), ESConfig(iterations=5, workers=1, sigma=0.05),
           checkpoint=ck, log_csv=log)
    assert load_state(ck).iteration == 5
    resumed = run_es(noisy_quadratic, np.zeros(3), ESConfig(iterations=12, workers=1, sigma=0.05),
                     checkpoint=ck, log_csv=log)
    np.testing.assert_array_equal(resumed.theta, full.theta)
    rows = list(csv.DictReader(open(log)))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 13))


def test_parallel_workers_give_the_same_result_as_serial():
    serial = run_es(noisy_quadratic, np.zeros(3), ESConfig(iterations=3, workers=1, sigma=0.05))
    parallel = run_es(noisy_quadratic, np.zeros(3), ESConfig(iterations=3, workers=2, sigma=0.05))
    np.testing.assert_array_equal(serial.theta, parallel.theta)


def test_nan_counts_as_the_clip_value_and_theta_stays_finite():
    st = run_es(nan_sometimes, np.ones(3), ESConfig(iterations=10, workers=1, clip_value=5.0))
    assert np.all(np.isfinite(st.theta))
    assert max(r["max"] for r in st.history) == 5.0


def test_per_coordinate_sigma_is_checked():
    with pytest.raises(ValueError, match="sigma"):
        ESConfig(sigma=[0.1, 0.0, 0.1]).sigma_vector(3)
