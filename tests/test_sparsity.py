"""Structural sparsity: parsing per-layer probabilities, drawing masks, grouping updates."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.sparsity import (
    adjacent_groups,
    draw_mask,
    halo_thirds,
    parse_sparsity,
    segments,
    thirds_scheme,
)


@pytest.mark.parametrize(
    "n,want",
    [
        (1, [0.3]),
        (2, [0.1, 0.5]),
        (3, [0.1, 0.3, 0.5]),
        (4, [0.1, 0.3, 0.3, 0.5]),
        (5, [0.1, 0.1, 0.3, 0.5, 0.5]),
        (6, [0.1, 0.1, 0.3, 0.3, 0.5, 0.5]),
        (7, [0.1, 0.1, 0.3, 0.3, 0.3, 0.5, 0.5]),
    ],
)
def test_halo_scheme(n, want):
    probs = parse_sparsity("halo", n)
    assert probs.dtype == np.float64 and probs.shape == (n,)
    np.testing.assert_array_equal(probs, want)
    np.testing.assert_array_equal(parse_sparsity("  HALO ", n), want)


def test_halo_thirds_properties():
    for n in range(1, 200):
        t = halo_thirds(n)
        assert t.shape == (n,)
        assert np.all(np.diff(t) >= 0), n  # first .. last third from the input
        np.testing.assert_array_equal(t[::-1], 2 - t)  # mirror-symmetric
        sizes = np.bincount(t, minlength=3)
        assert sizes.max() - sizes.min() <= 1 or n < 3, (n, sizes)
        if n >= 3:
            assert sizes.min() >= 1


def test_dense_and_lists():
    np.testing.assert_array_equal(parse_sparsity("dense", 4), np.ones(4))
    np.testing.assert_array_equal(parse_sparsity("0.1, 0.3,0.5", 3), [0.1, 0.3, 0.5])
    np.testing.assert_array_equal(parse_sparsity("1", 1), [1.0])
    np.testing.assert_array_equal(parse_sparsity("1e-3,1.0", 2), [1e-3, 1.0])


@pytest.mark.parametrize(
    "text,n",
    [
        ("0", 1),
        ("1.5", 1),
        ("-0.1", 1),
        ("nan", 1),
        ("inf", 1),
        ("abc", 1),
        ("", 1),
        ("0.1,,0.5", 3),
        ("0.1,0.2", 3),
        ("0.1,0.2,0.3,0.4", 3),
        ("sparse", 2),
    ],
)
def test_bad_sparsity_names_field_and_value(text, n):
    with pytest.raises(ValueError, match=rf"sparsity '{text}'"):
        parse_sparsity(text, n)


def test_bad_arguments():
    with pytest.raises(ValueError, match="sparsity must be a string, got 0.5"):
        parse_sparsity(0.5, 3)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_layers"):
            parse_sparsity("halo", n)


def test_thirds_scheme():
    np.testing.assert_array_equal(parse_sparsity("thirds:0.2,0.6,0.9", 3), [0.2, 0.6, 0.9])
    five = parse_sparsity("thirds:0.2,0.6,0.9", 5)
    assert five.dtype == np.float64 and five.shape == (5,)
    np.testing.assert_array_equal(five, [0.2, 0.2, 0.6, 0.9, 0.9])  # by thirds, as "halo"
    np.testing.assert_array_equal(parse_sparsity("thirds:0.2,0.6,0.9", 1), [0.6])
    np.testing.assert_array_equal(parse_sparsity(" THIRDS: 0.2, 0.6 ,0.9 ", 4), [0.2, 0.6, 0.6, 0.9])
    np.testing.assert_array_equal(parse_sparsity("thirds:1,1,1", 4), np.ones(4))
    for n in range(1, 9):
        np.testing.assert_array_equal(parse_sparsity("thirds:0.1,0.3,0.5", n), parse_sparsity("halo", n))


@pytest.mark.parametrize(
    "text",
    ["thirds:0.2,0.6", "thirds:0.2,0.6,0.9,0.9", "thirds:0,0.5,1", "thirds:0.1,0.5,1.5",
     "thirds:a,b,c", "thirds:", "thirds:0.1,,0.5", "thirds:nan,0.5,0.5"],
)
def test_bad_thirds_name_the_text(text):
    for n in (3, 5):
        with pytest.raises(ValueError, match=rf"sparsity '{text}'"):
            parse_sparsity(text, n)


@pytest.mark.parametrize("probs", [(0.1, 0.3, 0.5), (0.02, 0.5, 1.0), (0.123456, 0.7, 0.99)])
def test_thirds_scheme_text_round_trips(probs):
    text = thirds_scheme(probs)
    assert text.startswith("thirds:")
    # 4 significant digits in the text
    np.testing.assert_allclose(parse_sparsity(text, 3), probs, rtol=5e-4)
    np.testing.assert_allclose(parse_sparsity(text, 6), np.repeat(probs, 2), rtol=5e-4)
    assert thirds_scheme(parse_sparsity(text, 3)) == text


def test_thirds_scheme_text():
    assert thirds_scheme((0.1, 0.3, 0.5)) == "thirds:0.1,0.3,0.5"
    np.testing.assert_array_equal(parse_sparsity(thirds_scheme((0.1, 0.3, 0.5)), 3), [0.1, 0.3, 0.5])
    assert thirds_scheme(np.array([0.25, 0.5, 1.0])) == "thirds:0.25,0.5,1"
    with pytest.raises(ValueError, match="3 probabilities"):
        thirds_scheme((0.1, 0.3))


def test_draw_mask():
    probs = np.array([0.1, 0.3, 0.5, 1.0])
    rng = np.random.default_rng(0)
    masks = np.array([draw_mask(probs, rng) for _ in range(20000)])
    assert masks.dtype == bool and masks.shape == (20000, 4)
    assert masks[:, 3].all()
    freq = masks.mean(axis=0)
    sigma = np.sqrt(probs * (1 - probs) / 20000)
    assert np.all(np.abs(freq - probs) <= 5 * sigma + 1e-12), freq
    # independent across layers: P(layer 0 and layer 2) = 0.05
    both = np.mean(masks[:, 0] & masks[:, 2])
    assert abs(both - 0.05) < 5 * np.sqrt(0.05 * 0.95 / 20000)
    # reproducible from the seed
    a = [draw_mask(probs, np.random.default_rng(7)) for _ in range(3)]
    np.testing.assert_array_equal(a[0], a[1])


def test_segments_examples():
    ones = np.ones(5, dtype=np.int64)
    assert segments(np.ones(5, bool), ones) == [(0, 4)]
    assert segments(np.zeros(5, bool), ones) == []
    assert segments(np.array([1, 1, 0, 1, 1], bool), ones) == [(0, 1), (3, 4)]
    assert segments(np.array([1, 1, 1, 1, 1], bool), np.array([3, 3, 2, 2, 5])) == [
        (0, 1),
        (2, 3),
        (4, 4),
    ]
    assert segments(np.array([0, 0, 1], bool), np.array([1, 1, 1])) == [(2, 2)]
    assert segments(np.array([True]), np.array([9])) == [(0, 0)]
    with pytest.raises(ValueError, match="equal length"):
        segments(np.ones(3, bool), np.ones(2))


def test_segments_partition_updated_layers():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        mask = rng.random(n) < 0.6
        counts = rng.integers(1, 3, n)
        groups = segments(mask, counts)
        covered = [j for a, b in groups for j in range(a, b + 1)]
        assert covered == list(np.flatnonzero(mask))  # every updated layer once, in order
        for a, b in groups:
            assert a <= b and len(set(counts[a : b + 1])) == 1
        for (_, b1), (a2, _) in zip(groups, groups[1:]):
            assert a2 > b1 + 1 or counts[b1] != counts[a2]  # groups are maximal


def test_adjacent_groups_join_touching_segments_only():
    assert adjacent_groups([]) == []
    assert adjacent_groups([(0, 0), (1, 1), (3, 3)]) == [[(0, 0), (1, 1)], [(3, 3)]]
    assert adjacent_groups([(0, 1), (2, 3), (4, 4)]) == [[(0, 1), (2, 3), (4, 4)]]
    assert adjacent_groups([(1, 1), (3, 4)]) == [[(1, 1)], [(3, 4)]]
