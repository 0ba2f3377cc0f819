"""HALO's validation level: the held-out split, the probe, the schedule and their joins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.optim_base import Optimizer, StepInfo
from models.halo.optimizer import make_halo
from models.halo.schedule import ValidationLevel, ValidationSchedule, level_from_mapping
from models.halo.weights import load_weights, save_weights, shipped_versions
from models.nets import build_network
from models.train import (
    Trainer,
    ValidationProbe,
    example_groups,
    hold_out_validation,
    validation_split,
)


def _oversampled(seed=0):
    """Two classes: 40 distinct examples of class 0, 4 distinct of class 1 copied 10x."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((40, 3)).astype(np.float32)
    x1 = np.repeat(rng.standard_normal((4, 3)).astype(np.float32), 10, axis=0)
    x = np.concatenate([x0, x1])
    y = np.array([0] * 40 + [1] * 40)
    return x, y


def test_example_groups_join_identical_rows_only():
    x, _ = _oversampled()
    g = example_groups(x)
    assert np.unique(g).size == 44
    assert np.unique(g[40:]).size == 4
    assert all(np.array_equal(x[i], x[j]) for i in range(80) for j in range(80) if g[i] == g[j])


def test_validation_split_keeps_copies_on_one_side_and_every_class():
    x, y = _oversampled()
    tr, va = validation_split(x, y, 0.25, 1000, seed=3)
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == 80
    seen_val = {x[i].tobytes() for i in va}
    assert not any(x[i].tobytes() in seen_val for i in tr)  # no copy leaks across
    assert set(y[va]) == {0, 1} and set(y[tr]) == {0, 1}
    assert 8 <= np.sum(y[va] == 0) <= 12  # about a quarter of 40, whole groups


def test_validation_split_is_seeded_and_capped():
    x, y = _oversampled()
    a = validation_split(x, y, 0.5, 1000, seed=1)
    b = validation_split(x, y, 0.5, 1000, seed=1)
    c = validation_split(x, y, 0.5, 1000, seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    _, small = validation_split(x, y, 0.5, 8, seed=1)
    assert small.size <= 20  # the cap binds (one whole group of 10 copies may overshoot it)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 0.6, math.nan])
def test_validation_split_refuses_bad_fractions(fraction):
    x, y = _oversampled()
    with pytest.raises(ValueError, match="validation fraction"):
        validation_split(x, y, fraction, 100, 0)


def test_validation_split_refuses_data_with_nothing_to_hold_out():
    x = np.ones((10, 3), np.float32)
    with pytest.raises(ValueError, match="1 distinct"):
        validation_split(x, np.zeros(10, np.int64), 0.2, 100, 0)


def test_probe_weights_classes_to_the_training_distribution():
    net = build_network("mlp", (3,), 2, seed=0)
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((6, 3)).astype(np.float32)
    yv = np.array([0, 0, 0, 0, 0, 1])  # val: 5:1
    train_y = np.array([0, 1] * 10)   # train: 1:1
    probe = ValidationProbe(xv, yv, train_y, 2, every=5, chunk=4)
    logits = net.forward(xv).astype(np.float64)
    ce = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) - (
        logits - logits.max(1, keepdims=True))[np.arange(6), yv]
    want = 0.5 * ce[:5].mean() + 0.5 * ce[5]
    assert probe.loss(net) == pytest.approx(want, rel=1e-6)
    assert len(probe) == 6


def _recording_optimizer(seen):
    def init(n):
        return ()

    def update(p, g, state, info: StepInfo):
        seen.append((info.step, info.val_step, info.val_loss))

    return Optimizer("rec", {}, init, update)


def test_trainer_measures_the_probe_on_its_cadence_and_passes_it_on():
    net = build_network("mlp", (3,), 2, seed=0)
    x, y = _oversampled()
    probe = ValidationProbe(x[:10], y[:10], y, 2, every=4)
    seen = []
    tr = Trainer(net, _recording_optimizer(seen), None, seed=0, validation=probe)
    for t in range(10):
        tr.step(x[:8], y[:8], t, t / 10)
    assert [s[1] for s in seen] == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]
    assert tr.val_probes == 3 and all(math.isfinite(s[2]) for s in seen)
    assert seen[0][2] == pytest.approx(probe.loss(build_network("mlp", (3,), 2, seed=0)))


def test_trainer_without_a_probe_passes_none():
    net = build_network("mlp", (3,), 2, seed=0)
    x, y = _oversampled()
    seen = []
    Trainer(net, _recording_optimizer(seen), None, seed=0).step(x[:8], y[:8], 0, 0.0)
    assert seen[0][1] == -1 and math.isnan(seen[0][2])


def test_schedule_rule_step_by_step():
    lv = ValidationLevel(start=-0.5, up=0.2, down=1.0, tol=0.1, s_max=0.0)
    s = ValidationSchedule(lv)
    assert s.s == -0.5
    s.observe(1.0, 0)            # first probe: sets the best, no move
    assert s.s == -0.5
    s.observe(0.9, 25)           # better: up
    assert s.s == pytest.approx(-0.3)
    s.observe(0.9, 25)           # the same probe again: ignored
    assert s.s == pytest.approx(-0.3)
    s.observe(0.8, 50)
    s.observe(0.7, 75)           # capped at s_max
    assert s.s == pytest.approx(0.0)
    s.observe(0.7 * math.exp(0.05), 100)  # worse by half of tol: half of down
    assert s.s == pytest.approx(-0.5)
    s.observe(5.0, 125)          # far worse: all of down
    assert s.s == pytest.approx(-1.5)
    s.observe(math.nan, 150)     # a non-finite held-out loss: all of down
    assert s.s == pytest.approx(-2.5)
    assert s.factor == pytest.approx(math.exp(-2.5))
    s.observe(1.0, -1)           # no probe yet: nothing
    assert s.probes == 7


@pytest.mark.parametrize("field,value", [("tol", 0.0), ("down", -1.0), ("every", 0),
                                         ("fraction", 0.9), ("up", math.inf), ("rollback", -0.1),
                                         ("rollback_on_error", 0.5)])
def test_level_fields_are_checked(field, value):
    with pytest.raises(ValueError, match=field if field != "up" else "finite"):
        level_from_mapping({field: value}, "test")


def test_level_refuses_unknown_fields():
    with pytest.raises(ValueError, match="'patience'"):
        level_from_mapping({"patience": 3}, "test")


def test_weights_round_trip_with_and_without_the_level(tmp_path):
    versions = shipped_versions()
    assert all(load_weights(versions[v]).validation is None for v in ("halo-v0", "halo-v1", "halo-v2"))
    newest = load_weights()  # halo-v3 and later carry a level; it survives a round trip
    assert newest.validation is not None and newest.validation.rollback == pytest.approx(0.3)
    assert load_weights(save_weights(tmp_path / "newest.npz", newest)).validation == newest.validation
    w = load_weights(versions["halo-v2"])
    lv = ValidationLevel(start=-1.0, up=0.1, every=10, max_examples=64)
    p = save_weights(tmp_path / "w.npz", w._replace(validation=lv))
    back = load_weights(p)
    assert back.validation == lv
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["validation"] = arrays["validation"][:3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="validation has 3 values"):
        load_weights(tmp_path / "bad.npz")


def test_halo_without_probe_is_unchanged_and_with_one_asks_for_it():
    w = load_weights()._replace(validation=None)
    assert "validation" not in make_halo(weights=w).hyperparameters
    assert "validation" not in make_halo(weights=shipped_versions()["halo-v2"]).hyperparameters
    assert make_halo().hyperparameters["validation"] == {  # the newest shipped (halo-v3) asks
        "fraction": 0.1, "max_examples": 256, "every": 25, "rollback": 0.3, "rollback_on_error": 0.0}
    opt = make_halo(weights=w._replace(validation=ValidationLevel(every=7)))
    assert opt.hyperparameters["validation"] == {"fraction": 0.1, "max_examples": 512, "every": 7,
                                                 "rollback": 0.0, "rollback_on_error": 0.0}


def test_halo_scales_its_step_by_the_level_factor():
    """The level's offset multiplies every tensor's step: start = log(1/4) gives 1/4 of it."""
    w = load_weights()
    n = 64
    g = np.random.default_rng(0).standard_normal(n).astype(np.float32)

    def first_step(level, val_loss=math.nan, val_step=-1):
        opt = make_halo(weights=w._replace(validation=level), kernel="elementwise")
        p = np.zeros(n, np.float32)
        opt.update(p, g, opt.init(n), StepInfo(0, 0.0, 1, 0, n, 1.0, val_loss, val_step))
        return p

    plain = first_step(None)
    np.testing.assert_allclose(first_step(ValidationLevel()), plain, rtol=1e-6)
    quarter = first_step(ValidationLevel(start=math.log(0.25)), 1.0, 0)
    np.testing.assert_allclose(quarter, plain / 4.0, rtol=1e-5)


def test_hold_out_validation_takes_examples_out_of_training():
    x, y = _oversampled()
    w = load_weights()._replace(validation=None)
    opt = make_halo(weights=w._replace(validation=ValidationLevel(fraction=0.25, every=5)))
    xt, yt, probe = hold_out_validation(opt, x, y, 2, seed=0)
    assert probe is not None and len(probe) + yt.shape[0] == 80
    assert probe.every == 5
    plain = make_halo(weights=w)
    xt2, yt2, none = hold_out_validation(plain, x, y, 2, seed=0)
    assert none is None and xt2 is x and yt2 is y


def test_adapt_with_a_validation_level_reports_the_held_out_split(tmp_path, monkeypatch):
    from agent.engine import AdaptConfig, run_adaptation

    for k in ("HALO_DATA_DIR", "HALO_CACHE_DIR", "HALO_POWER_METER", "HALO_POWER_ORDER"):
        monkeypatch.delenv(k, raising=False)
    wpath = save_weights(tmp_path / "w.npz", load_weights()._replace(
        validation=ValidationLevel(fraction=0.1, max_examples=64, every=10)))
    r = run_adaptation(AdaptConfig(
        task="synthetic-a", data_dir=tmp_path / "data", optimizer="halo", steps=30,
        eval_every=10, seed=0, power_source="estimate", idle_seconds=0.0,
        hyperparameters={"weights": str(wpath), "kernel": "elementwise"}))
    v = r["validation"]
    assert 0 < v["examples_held_out"] <= 64 + 10  # whole groups may overshoot the cap a little
    assert v["probes"] == 3 and v["examples_trained_on"] > v["examples_held_out"]
    assert r["hyperparameters"]["validation"]["every"] == 10
    assert r["status"] == "succeeded"


def test_planned_epochs_set_the_start_offset():
    lv = ValidationLevel(start=-0.5, epochs_coef=-0.4)
    s = ValidationSchedule(lv)
    s.begin(math.e ** 2)   # two e-folds of passes over the data
    assert s.s == pytest.approx(-0.5 - 0.8)
    s.begin(1.0)           # only once
    assert s.s == pytest.approx(-1.3)
    far = ValidationSchedule(lv)
    far.begin(1e9)         # clipped at log E = 6
    assert far.s == pytest.approx(-0.5 - 2.4)
    unknown = ValidationSchedule(lv)
    unknown.begin(math.nan)
    assert unknown.s == -0.5


def test_hold_out_validation_counts_distinct_examples_for_planned_epochs():
    x, y = _oversampled()  # 44 distinct examples, 80 rows
    opt = make_halo(weights=load_weights()._replace(validation=ValidationLevel(fraction=0.25)))
    _, yt, probe = hold_out_validation(opt, x, y, 2, seed=0, steps=100, batch_size=8)
    from models.train import example_groups as groups

    tr, _ = validation_split(x, y, 0.25, 512, 0)
    distinct = np.unique(groups(x)[tr]).size
    assert probe.planned_epochs == pytest.approx(100 * 8 / distinct)
    _, _, no_budget = hold_out_validation(opt, x, y, 2, seed=0)
    assert math.isnan(no_budget.planned_epochs)


def test_a_lazy_image_split_stays_lazy_and_splits_like_its_array():
    """An image split kept as uint8 (models.data.lazy) is split by its pixels and handed on
    as lazy subsets, never converted whole to float32; values equal the dense path's."""
    from models.data.lazy import StandardizedImages, lookup_table

    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 256, (30, 4, 4, 1), dtype=np.uint8)
    pixels = np.concatenate([distinct, np.repeat(distinct[:3], 5, axis=0)])  # copies of 3
    lazy = StandardizedImages(pixels, np.arange(pixels.shape[0]),
                              lookup_table(np.array([0.5]), np.array([0.25])))
    dense = np.asarray(lazy)
    y = np.array([0, 1] * 15 + [0] * 15)
    np.testing.assert_array_equal(example_groups(lazy), example_groups(dense))
    opt = make_halo(weights=load_weights()._replace(validation=ValidationLevel(fraction=0.3)))
    xt, yt, probe = hold_out_validation(opt, lazy, y, 2, seed=1)
    xt2, yt2, probe2 = hold_out_validation(opt, dense, y, 2, seed=1)
    assert isinstance(xt, StandardizedImages) and isinstance(probe.x, StandardizedImages)
    np.testing.assert_array_equal(np.asarray(xt), xt2)
    np.testing.assert_array_equal(np.asarray(probe.x), probe2.x)
    np.testing.assert_array_equal(yt, yt2)


def test_weights_without_the_later_rollback_field_load_with_it_off(tmp_path):
    w = load_weights()
    p = save_weights(tmp_path / "w.npz", w._replace(validation=ValidationLevel(start=-1.0, rollback=0.3)))
    assert load_weights(p).validation.rollback == 0.3
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    from models.halo.schedule import MIN_FIELDS

    arrays["validation"] = arrays["validation"][:MIN_FIELDS]  # as halo-v3 candidates before rollback
    np.savez(tmp_path / "old.npz", **arrays)
    old = load_weights(tmp_path / "old.npz").validation
    assert old.rollback == 0.0 and old.s_min == -30.0 and old.start == -1.0


def test_probe_keeps_the_best_parameters_and_restores_them_past_the_margin():
    x, y = _oversampled()
    probe = ValidationProbe(x[:10], y[:10], y, 2, every=1, rollback=0.1)
    p = np.arange(4, dtype=np.float32)
    assert not probe.keep_best(p, 1.0)          # first probe: the best so far, kept
    p += 1
    assert not probe.keep_best(p, 1.05)         # worse, within the margin: kept going
    assert np.array_equal(p, np.arange(4) + 1)
    p += 1
    assert probe.keep_best(p, 1.0 * math.exp(0.11))  # past the margin: back to the best
    assert np.array_equal(p, np.arange(4)) and probe.rollbacks == 1
    p += 5
    assert not probe.keep_best(p, 0.5)          # a new best replaces the copy
    p -= 3
    assert probe.keep_best(p, math.nan)         # a non-finite loss restores too
    assert np.array_equal(p, np.arange(4) + 5) and probe.rollbacks == 2
    zero = ValidationProbe(x[:10], y[:10], y, 2, every=1, rollback=0.1)
    assert not zero.keep_best(p, 0.0)           # a held-out loss of exactly 0 (underflow)
    assert not zero.keep_best(p, 0.0) and zero.keep_best(p, 1e-3)  # any rise from 0 is past it
    off = ValidationProbe(x[:10], y[:10], y, 2, every=1)
    q = np.ones(3, np.float32)
    assert not off.keep_best(q, 1.0) and off.snapshot is None  # 0: off, nothing kept
    with pytest.raises(ValueError, match="rollback"):
        ValidationProbe(x[:10], y[:10], y, 2, every=1, rollback=-1.0)


def test_trainer_rolls_back_to_the_best_probe_and_halo_asks_for_it():
    w = load_weights()
    opt = make_halo(weights=w._replace(validation=ValidationLevel(every=2, rollback=0.05)))
    x, y = _oversampled()
    xt, yt, probe = hold_out_validation(opt, x, y, 2, seed=0)
    assert probe.rollback == 0.05
    net = build_network("mlp", (3,), 2, seed=0)
    tr = Trainer(net, make_halo(10.0, weights=w), None, seed=0, validation=probe)  # far too big a step
    none = np.zeros(net.n_layers, bool)
    for t in range(12):
        # probe steps update nothing (mask of no layer): the parameters after them are
        # exactly what the probe left, restored or not
        tr.step(xt[:16], yt[:16], t, t / 12, mask=none if t % 2 == 0 else None)
        if probe.rollbacks:
            break
    assert probe.rollbacks == 1 and t % 2 == 0
    assert np.array_equal(net.params.data, probe.snapshot)
    assert probe.loss(net) == pytest.approx(probe.best)  # the best probe's parameters
    assert tr.val_loss > probe.best  # the optimizer still sees the worse loss


def test_the_floor_stops_the_slow_down_and_keeps_nan_cuts():
    s = ValidationSchedule(ValidationLevel(start=0.0, down=1.0, tol=0.1, s_min=-1.5))
    s.observe(1.0, 0)
    s.observe(2.0, 25)
    assert s.s == pytest.approx(-1.0)
    s.observe(2.0, 50)
    assert s.s == pytest.approx(-1.5)  # floored
    s.observe(2.0, 75)
    assert s.s == pytest.approx(-1.5)
    s.observe(math.nan, 100)  # divergence is not floored
    assert s.s == pytest.approx(-2.5)
    s.observe(3.0, 125)  # below the floor already: a worse probe leaves it there
    assert s.s == pytest.approx(-2.5)
    assert ValidationLevel().s_min == -30.0  # the default: no floor in practice


def test_measure_gives_the_loss_and_the_class_balanced_error_of_one_pass():
    x, y = _oversampled()
    net = build_network("mlp", (3,), 2, seed=0)
    probe = ValidationProbe(x, y, y, 2, every=1, chunk=7)  # several chunks
    loss, err = probe.measure(net)
    assert loss == probe.loss(net)
    wrong = net.predict(x) != y
    assert err == pytest.approx(np.mean([wrong[y == c].mean() for c in (0, 1)]))


def test_rollback_on_the_balanced_error_restores_past_an_absolute_margin():
    x, y = _oversampled()
    probe = ValidationProbe(x[:10], y[:10], y, 2, every=1, rollback=0.05, on_error=True)
    p = np.zeros(3, np.float32)
    assert not probe.keep_best(p, 1.0, 0.30)
    p += 1
    assert not probe.keep_best(p, 0.5, 0.34)   # lower loss, higher error: within the margin
    p += 1
    assert not probe.keep_best(p, 0.9, 0.30)   # the same error, lower loss: the new best
    assert np.array_equal(probe.snapshot, np.full(3, 2.0)) and probe.best_error == 0.30
    p += 1
    assert probe.keep_best(p, 0.1, 0.36)       # error worse by 0.06: back, whatever the loss
    assert np.array_equal(p, np.full(3, 2.0)) and probe.rollbacks == 1


def test_example_groups_by_hash_equal_the_sorted_reference(monkeypatch):
    """Hash-then-verify groups are the sorted rows' groups: duplicates across chunk
    boundaries, float32 rows where -0.0 and 0.0 are different bytes, uint8 images, and a
    forced hash collision (every hash equal) that must fall back to sorting."""
    import models.train as train

    rng = np.random.default_rng(5)
    base = rng.standard_normal((300, 7)).astype(np.float32)
    base[1, 0], base[2, 0] = 0.0, -0.0
    base[2, 1:] = base[1, 1:]  # equal as floats, different as bytes
    x = base[rng.integers(0, 300, 9000)]  # > _GROUP_CHUNK rows, copies far apart
    img = rng.integers(0, 3, (5000, 2, 2, 1), dtype=np.uint8)  # few distinct images
    for data in (x, img):
        np.testing.assert_array_equal(train.example_groups(data),
                                      train._example_groups_sorted(data))
    monkeypatch.setattr(train, "_row_hashes", lambda a: np.zeros(a.shape[0], np.uint64))
    np.testing.assert_array_equal(train.example_groups(x), train._example_groups_sorted(x))


def test_duplication_skew_sets_the_start_offset_and_is_zero_without_duplicates():
    lv = ValidationLevel(start=-0.5, skew_coef=-0.6)
    s = ValidationSchedule(lv)
    s.begin(math.nan, 1.5)
    assert s.s == pytest.approx(-0.5 - 0.9)
    far = ValidationSchedule(lv)
    far.begin(math.nan, 9.0)  # clipped at K = 4
    assert far.s == pytest.approx(-0.5 - 2.4)
    off = ValidationSchedule(lv._replace(skew_coef=0.0))  # every file before the field
    off.begin(math.nan, 2.0)
    assert off.s == -0.5

    x, y = _oversampled()  # 44 distinct examples, 80 rows
    opt = make_halo(weights=load_weights()._replace(validation=ValidationLevel(fraction=0.25)))
    _, _, probe = hold_out_validation(opt, x, y, 2, seed=0, steps=100, batch_size=8)
    tr, _ = validation_split(x, y, 0.25, 512, 0)
    copies = np.unique(example_groups(x)[tr], return_counts=True)[1]
    assert copies.max() > copies.mean()  # uneven: the rarest rows repeat more
    size_biased = (copies ** 2).sum() / copies.sum()  # copies of the row a draw lands on
    assert probe.duplication_skew == pytest.approx(math.log(size_biased / copies.mean()))
    distinct = np.unique(x, axis=0)
    _, _, plain = hold_out_validation(opt, distinct, np.arange(len(distinct)) % 2, 2, seed=0)
    assert plain.duplication_skew == 0.0
    stray = np.concatenate([distinct, distinct[:1]])  # one stray duplicate: K stays ~0
    _, _, one = hold_out_validation(opt, stray, np.arange(len(stray)) % 2, 2, seed=0)
    assert 0.0 <= one.duplication_skew < 0.05


def test_the_skew_coefficient_round_trips_and_older_levels_load_without_it(tmp_path):
    w = load_weights()
    p = save_weights(tmp_path / "w.npz", w._replace(validation=ValidationLevel(skew_coef=-0.7)))
    assert load_weights(p).validation.skew_coef == pytest.approx(-0.7)
    assert load_weights().validation.skew_coef == 0.0  # halo-v3, stored before the field
