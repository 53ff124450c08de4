"""Method presets: SPEC values, overrides, refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from steik.errors import SteikError
from steik.methods import (
    EXPERIMENTS,
    METHODS,
    learning_rate,
    network_kwargs,
    parse_override,
    preset,
)
from steik.model import build_network
from steik.nn import SDFNetwork


def test_steik_srb_matches_spec():
    c = preset("steik", "srb")
    assert (c.neuron, c.hidden, c.layers, c.init, c.div, c.div_norm) == (
        "quadratic",
        128,
        5,
        "mfgi",
        "directional",
        "l1",
    )
    assert (c.w_sdf, c.w_inter, c.w_normal, c.w_eikonal) == (2e3, 1e2, 1e2, 5e1)
    assert c.schedule_knots == (1e2, 0.2, 1e2, 0.4, 0.0, 0.0) and c.schedule == "linear"
    assert (c.lr, c.iterations, c.n_manifold, c.n_offsurface, c.grad_clip) == (
        1e-4,
        10_000,
        15_000,
        15_000,
        10.0,
    )
    assert c.sphere == (1.6, 0.1)


def test_rows_of_the_tables():
    digs = preset("digs", "srb")
    assert (digs.neuron, digs.hidden, digs.div, digs.w_sdf, digs.lr) == (
        "linear",
        256,
        "full",
        3e3,
        5e-5,
    )
    assert (
        preset("lin_lln", "shapenet").div == "directional"
        and preset("lin_lln", "shapenet").neuron == "linear"
    )
    assert (
        preset("qua_ldiv", "shapenet").div == "full"
        and preset("qua_ldiv", "shapenet").hidden == 128
    )
    assert preset("steik", "shapenet").w_sdf == 5e3 and preset("steik", "shapenet").lr == 5e-5
    igr = preset("igr_wo_n", "srb")
    assert (igr.activation, igr.init, igr.layers, igr.hidden, igr.w_inter, igr.div) == (
        "softplus",
        "geometric_relu",
        8,
        512,
        0.0,
        "none",
    )
    assert (
        preset("siren_wo_n", "srb").init == "siren" and preset("siren_wo_n", "srb").sphere is None
    )
    scene = preset("steik", "scene")
    assert (
        scene.layers,
        scene.hidden,
        scene.init,
        scene.lr,
        scene.iterations,
        scene.schedule_knots[0],
    ) == (8, 256, "siren", 8e-6, 100_000, 1e1)
    two = preset("steik", "2d")
    assert (two.layers, two.hidden, two.grad_clip, two.sphere, two.lr) == (
        4,
        128,
        0.0,
        (1.6, 1.0),
        5e-5,
    )
    # The reference 2D networks: DiGS's linear 5 x 128 (66,561 weights), StEik's quadratic 4 x 128.
    digs = preset("digs", "2d")
    assert (digs.layers, digs.hidden) == (5, 128)
    assert build_network(digs, 2).n_params_per_shape() == 66_561
    assert build_network(two, 2).n_params_per_shape() == 3 * (3 * 128) + 3 * 3 * 128 * 129 + 3 * 129


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_preset_builds_a_network(name, experiment):
    c = preset(name, experiment)
    small = preset(name, experiment, hidden=8, layers=2, skip_in=(1,) if c.skip_in else ())
    dim = 2 if experiment == "2d" else 3
    net = SDFNetwork(dim, n_shapes=1, seeds=[0], **network_kwargs(small))
    assert net.n_params_per_shape() > 0
    assert torch.isfinite(net(torch.rand(1, 5, dim))).all()
    if c.loss == "digs":  # the SPEC 3 family: the same network as the trainer's builder
        assert build_network(small, dim).n_params_per_shape() == net.n_params_per_shape()


def test_presets_are_the_tables_of_before():
    """Every (method, experiment) gives the very configuration (every field, with its type, and
    the digest) the if/elif presets gave at 8f6a58e, from which tests/data/method_presets.json
    was written once."""
    expected = json.loads((Path(__file__).parent / "data" / "method_presets.json").read_text())
    assert sorted(expected) == sorted(f"{m}/{e}" for m in METHODS for e in EXPERIMENTS)
    for key, want in expected.items():
        config = preset(*key.split("/"))
        fields = config.as_dict()
        # fields added since, at their defaults (they stay out of the digest)
        assert fields.pop("step") == "auto", key
        # JSON text compares 1 and 1.0 as different, as the digest does
        assert json.dumps(fields, sort_keys=True) == json.dumps(
            want["fields"], sort_keys=True
        ), key
        assert config.digest() == want["digest"], key


def test_existing_presets_keep_their_digests():
    """Fields added for the SPEC 11 baselines stay out of the hash at their defaults, so runs and
    checkpoints of the SPEC 3 family keep their identity (values from before those fields)."""
    before = {
        "siren_wo_n": ["12cce81d07a6", "991cdd193d43", "0a1ed65bcbdf", "3ff3dbb5b077"],
        "digs": ["9be806bf48d6", "ab0520ab7be4", None, "1679ecfc7895"],  # scene preset fixed
        "lin_lln": ["599cfc7ebe86", "ff1b9743c817", "edd8271d6194", "45fd8a5307a8"],
        "qua_ldiv": ["1dcb4376ed35", "18f469c16cb2", "693b381b457a", "1ce22c5835fe"],
        "steik": ["62709c6d7111", "1c4f3714414c", "bedc563fedb4", "63fc56259324"],
        # the SPEC 11 baselines, from before fourier_keep_input and phase_mu existed
        "igr_wo_n": ["c8ae1c6eb856", "c82fc305fa69", "0d971305bc49", "6fef7d5c9947"],
        "sal": ["8ee3febec30c", "f23c92c2c18e", "c5637160525c", "e97f079eb239"],
        "igr_ff": ["36ca72c757f1", "0062311b7485", "9b3160618483", "7a427817fea0"],
        "phase_ff": ["5a4d7d86a0bf", "3c190271e738", "b60002aa3948", "27eaa8c1c103"],
    }
    for name, digests in before.items():
        for experiment, digest in zip(EXPERIMENTS, digests, strict=True):
            if digest is not None:
                assert preset(name, experiment).digest() == digest, (name, experiment)
    # a baseline field away from its default does enter the hash
    assert preset("steik", "srb", lr_decay_every=10).digest() != "62709c6d7111"
    assert preset("igr_ff", "srb", fourier_keep_input=False).digest() != "36ca72c757f1"
    assert preset("phase_ff", "srb", phase_mu=0.1).digest() != "5a4d7d86a0bf"


def test_igr_recipe_matches_its_code():
    """amosgropp/IGR setup.conf (dims, skip_in, beta, radius_init, global_sigma, lambda, lr
    schedule), run.py (points_batch 16384, nepoch 100000, 50th neighbour), sample.py (batch/8
    global samples), general.py (lr floor 5e-6)."""
    for experiment in EXPERIMENTS:
        c = preset("igr_wo_n", experiment)
        assert (c.loss, c.neuron, c.activation, c.init, c.layers, c.hidden, c.skip_in) == (
            "igr", "linear", "softplus", "geometric_relu", 8, 512, (4,),
        )  # fmt: skip
        assert (c.w_sdf, c.w_eikonal, c.w_normal, c.w_inter, c.div, c.use_normals) == (
            1.0, 0.1, 1.0, 0.0, "none", False,
        )  # fmt: skip
        assert (c.lr, c.lr_decay_every, c.lr_decay_factor, c.lr_min) == (5e-3, 2000, 0.5, 5e-6)
        assert (c.iterations, c.n_manifold, c.n_offsurface, c.offsurface_extent) == (
            100_000, 16_384, 2_048, 1.8,
        )  # fmt: skip
        assert (c.local_sigma_neighbours, c.grad_clip, c.sphere) == (50, 0.0, None)
    ff = preset("igr_ff", "srb")
    assert (ff.loss, ff.fourier_features, ff.fourier_scale, ff.skip_in) == ("igr", 256, 2.0, (4,))


def test_sal_recipe_matches_its_code():
    """matanatz/SAL recon.conf (dims, weight norm on layers 0-7, lr 0.0005 with adjust_lr False,
    SALLoss unsigned), recon_dataset.py (sigmas: 50th neighbour and 1.0, 250000 tiling, 128^2
    samples per iteration), exp_runner.py (nepoch 2000; batch size 1 for recon)."""
    c = preset("sal", "srb")
    assert (c.loss, c.activation, c.init, c.layers, c.hidden, c.weight_norm, c.skip_in) == (
        "sal", "relu", "geometric_sal", 8, 512, True, (),
    )  # fmt: skip
    assert (c.lr, c.lr_decay_every, c.iterations, c.n_offsurface, c.n_manifold) == (
        5e-4, 0, 2_000, 16_384, 0,
    )  # fmt: skip
    assert (c.local_sigma_neighbours, c.sal_global_sigma, c.sal_pool_size) == (50, 1.0, 250_000)


def test_phase_and_digs_scene_presets():
    p = preset("phase_ff", "srb")
    assert (p.loss, p.output_map, p.phase_epsilon, p.fourier_features, p.skip_in) == (
        "phase", "phase_log", 0.01, 256, (4,),
    )  # fmt: skip
    scene = preset("digs", "scene")  # DiGS's run_scene_recon_exp.sh
    assert (scene.layers, scene.hidden, scene.init, scene.lr, scene.iterations) == (
        9, 512, "siren", 1e-6, 300_000,
    )  # fmt: skip
    weights = (scene.w_sdf, scene.w_inter, scene.w_normal, scene.w_eikonal, scene.schedule_knots[0])
    assert weights == (3e3, 1e2, 1e2, 5e1, 1e1)
    assert scene.schedule_knots == (1e1, 0.1, 1e1, 0.3, 0.0, 0.0) and scene.grad_clip == 10.0
    assert preset("siren_wo_n", "scene").lr == 8e-6  # the other rows keep their scene settings


def test_learning_rate_schedule():
    igr = preset("igr_wo_n", "srb")
    assert [learning_rate(igr, i) for i in (0, 1999, 2000, 4000, 5999)] == [
        5e-3, 5e-3, 2.5e-3, 1.25e-3, 1.25e-3,
    ]  # fmt: skip
    # halved ten times by iteration 20,000: 0.005 / 1024 < 5e-6, so the floor holds from there
    assert learning_rate(igr, 19_999) == pytest.approx(5e-3 / 512)
    assert learning_rate(igr, 20_000) == 5e-6 and learning_rate(igr, 99_999) == 5e-6
    assert learning_rate(preset("sal", "srb"), 1500) == 5e-4  # adjust_lr = False
    assert learning_rate(preset("steik", "srb"), 9999) == 1e-4


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("loss", "chamfer", "loss = 'chamfer' is not valid"),
        ("skip_in", (9,), "skip_in must list layer indices 1..8"),
        ("skip_in", "4", "method field skip_in must be a list"),
        ("skip_in", (2.5,), r"method field skip_in must be a list of whole numbers, got \(2.5,\)"),
        ("fourier_features", -1, "fourier_features must be 0 or more, got -1"),
        ("fourier_scale", float("inf"), "method field fourier_scale must be a finite number"),
        ("fourier_scale", 0.0, "fourier_scale must be positive, got 0.0"),
        ("phase_epsilon", 1.0, "phase_epsilon must be positive and below 1, got 1.0"),
        ("phase_ball_radius", float("nan"), "method field phase_ball_radius must be a finite"),
        ("phase_ball_samples", 0, "phase_ball_samples must be at least 1"),
        ("local_sigma_neighbours", 2.5, "method field local_sigma_neighbours must be a whole"),
        ("sal_global_sigma", 0.0, "sal_global_sigma must be positive"),
        ("lr_decay_every", -1, "lr_decay_every must be 0 or more"),
        ("lr_decay_factor", 1.5, "lr_decay_factor must be positive and at most 1, got 1.5"),
        ("lr_min", 1.0, r"lr_min \(1.0\) must not exceed lr"),
        ("weight_norm", "yes", "method field weight_norm must be true or false"),
        ("div", "full", "div = 'full' belongs to the digs objective"),
        ("output_map", "phase_log", "needs loss = phase"),
    ],
)
def test_baseline_fields_are_validated(field, value, message):
    with pytest.raises(SteikError, match=message):
        preset("igr_wo_n", "srb", **{field: value})


def test_overrides_and_immutability():
    c = preset("steik", "srb", hidden=64, iterations=5)
    assert c.hidden == 64 and c.iterations == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.hidden = 3  # type: ignore[misc]
    assert preset("steik", "srb").hidden == 128  # a previous override never leaks


def test_unknown_names_list_valid_ones():
    with pytest.raises(SteikError, match="valid methods: igr_wo_n, siren_wo_n, digs"):
        preset("neural_splines", "srb")
    with pytest.raises(SteikError, match="valid experiments: srb, shapenet, scene, 2d"):
        preset("steik", "kitti")
    with pytest.raises(SteikError, match=r"unknown method field.*hiddn.*valid fields: name"):
        preset("steik", "srb", hiddn=3)
    with pytest.raises(SteikError, match="div = 'half'"):
        preset("steik", "srb", div="half")


def test_parse_override_types():
    assert parse_override("hidden=64") == ("hidden", 64)
    assert parse_override("lr=1e-3") == ("lr", 1e-3)
    assert parse_override("schedule_knots=1,0.5,2,3") == ("schedule_knots", (1.0, 0.5, 2.0, 3.0))
    assert parse_override("use_normals=true") == ("use_normals", True)
    assert parse_override("skip_in=2,4") == ("skip_in", (2, 4))
    assert parse_override("loss=phase") == ("loss", "phase")
    # the same message as a wrong value in the workflow's train.overrides
    with pytest.raises(SteikError, match="method field hidden must be a whole number, got 'abc'"):
        parse_override("hidden=abc")
    with pytest.raises(SteikError, match="FIELD=VALUE"):
        parse_override("hidden")
