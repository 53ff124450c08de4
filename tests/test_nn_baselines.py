"""Network options of the SPEC 11 baselines: skip connection, weight norm, Fourier features,
SAL's geometric init, PHASE's log transform; K independence and the cited parameter counts."""

from __future__ import annotations

import math

import pytest
import torch

from steik.methods import network_kwargs, preset
from steik.nn import SDFNetwork, WeightNormLinearLayer, phase_distance

OPTIONS = {
    "skip": dict(activation="softplus", init="geometric_relu", sphere=None, skip_in=(2,)),
    "weight_norm": dict(activation="relu", init="geometric_sal", sphere=None, weight_norm=True),
    "fourier": dict(
        activation="softplus",
        init="geometric_relu",
        sphere=None,
        skip_in=(2,),
        fourier_features=6,
        fourier_scale=2.0,
    ),
    "phase": dict(
        activation="softplus",
        init="geometric_relu",
        sphere=None,
        fourier_features=4,
        output_map="phase_log",
        phase_epsilon=0.04,
    ),
}


def _net(option: str, seeds: list[int]) -> SDFNetwork:
    return SDFNetwork(
        3, 16, 3, "linear", n_shapes=len(seeds), seeds=seeds, **OPTIONS[option]
    ).double()


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_batch_of_three_equals_three_single_networks(option):
    seeds = [3, 5, 8]
    batch = _net(option, seeds)
    x = torch.rand(3, 40, 3, dtype=torch.float64) * 2 - 1
    together = batch(x)
    for k, seed in enumerate(seeds):
        alone = _net(option, [seed])
        for name, tensor in alone.shape_state(0).items():
            assert torch.equal(batch.shape_state(k)[name], tensor), name
        assert torch.allclose(together[k], alone(x[k : k + 1])[0], rtol=1e-12, atol=1e-12)
    # shapes never mix: changing shape 1's weights leaves shapes 0 and 2 untouched
    with torch.no_grad():
        for p in batch.parameters():
            p[1].mul_(1.5)
    after = batch(x)
    assert torch.equal(after[0], together[0]) and torch.equal(after[2], together[2])
    assert not torch.allclose(after[1], together[1])


def test_shape_state_round_trip_includes_the_fourier_matrix():
    batch = _net("fourier", [1, 2])
    single = _net("fourier", [7])
    assert "fourier_matrix" in single.shape_state(0)
    single.load_shape_state(0, batch.shape_state(1))
    x = torch.rand(1, 20, 3, dtype=torch.float64)
    assert torch.equal(single(x), batch(x.expand(2, -1, -1))[1:2])
    # a K = 1 network built fresh loads the same state through load_state_dict (model files)
    fresh = _net("fourier", [0])
    fresh.load_state_dict(batch.shape_state(1))
    assert torch.equal(fresh(x), single(x))


def test_skip_connection_concatenates_the_input_scaled_by_one_over_root_two():
    net = SDFNetwork(2, 8, 3, "linear", "relu", "geometric_relu", None, skip_in=(2,)).double()
    widths = [(layer.in_features, layer.out_features) for layer in net.layers]
    assert widths == [(2, 8), (8, 6), (8, 8), (8, 1)]  # layer 1 leaves room for x
    x = torch.rand(1, 5, 2, dtype=torch.float64)

    def lin(i, h):
        layer = net.layers[i]
        return h @ layer.weight[0].T + layer.bias[0]

    h = torch.relu(lin(1, torch.relu(lin(0, x[0]))))
    h = torch.cat([h, x[0]], dim=-1) / math.sqrt(2.0)
    expected = lin(3, torch.relu(lin(2, h))).squeeze(-1)
    assert torch.allclose(net(x)[0], expected, rtol=1e-12, atol=1e-12)


def test_weight_norm_layer_normalises_each_row_per_shape():
    layer = WeightNormLinearLayer(3, 4, n_shapes=2).double()
    with torch.no_grad():
        layer.weight_v.normal_()
        layer.weight_g.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]]))
        layer.bias.zero_()
    w = layer.weight()
    assert torch.allclose(w.norm(dim=-1), layer.weight_g)
    assert torch.allclose(
        w / w.norm(dim=-1, keepdim=True), torch.nn.functional.normalize(layer.weight_v, dim=-1)
    )
    # a fresh network's effective weights are what the init rule wrote (g = |v|)
    net = SDFNetwork(3, 8, 2, "linear", "relu", "geometric_sal", None, weight_norm=True)
    for hidden in net.layers[:-1]:
        assert torch.allclose(hidden.weight(), hidden.weight_v, atol=1e-6)
    assert type(net.layers[-1]).__name__ == "LinearLayer"  # SAL leaves the last layer alone


def test_fresh_fourier_network_equals_the_network_without_fourier_features():
    plain = SDFNetwork(3, 32, 4, "linear", "softplus", "geometric_relu", None, skip_in=(2,))
    ff = SDFNetwork(
        3, 32, 4, "linear", "softplus", "geometric_relu", None,
        skip_in=(2,), fourier_features=16, fourier_scale=3.0,
    )  # fmt: skip
    x = torch.rand(1, 50, 3) * 2 - 1
    assert torch.equal(ff(x), plain(x))
    assert ff.layers[0].weight.shape[-1] == 3 + 2 * 16
    assert float(ff.fourier_matrix.std()) == pytest.approx(3.0, rel=0.35)
    # the Fourier part is live: a change of its first-layer columns changes u
    with torch.no_grad():
        ff.layers[0].weight[..., 3:].add_(0.05)
    assert not torch.allclose(ff(x), plain(x))
    # the encoding itself: [x, sin(2 pi x B^T), cos(2 pi x B^T)]
    phase = 2 * math.pi * x[0] @ ff.fourier_matrix[0].T
    assert torch.allclose(
        ff.encode(x)[0], torch.cat([x[0], phase.sin(), phase.cos()], -1), atol=1e-5
    )


def test_fourier_encoding_without_x_reads_sin_and_cos_only():
    options = dict(skip_in=(2,), fourier_features=16, fourier_scale=3.0)
    kept = SDFNetwork(3, 32, 4, "linear", "softplus", "geometric_relu", None, **options)
    dropped = SDFNetwork(
        3, 32, 4, "linear", "softplus", "geometric_relu", None, **options, fourier_keep_input=False
    )
    x = torch.rand(1, 50, 3) * 2 - 1
    assert dropped.layers[0].weight.shape[-1] == 2 * 16
    assert float(dropped.fourier_matrix.std()) == pytest.approx(3.0, rel=0.35)
    phase = 2 * math.pi * x[0] @ dropped.fourier_matrix[0].T
    expected = torch.cat([phase.sin(), phase.cos()], -1)
    assert torch.allclose(dropped.encode(x)[0], expected, atol=1e-5)
    # the whole first layer is initialised (no zero columns), so the Fourier part drives u
    assert bool((dropped.layers[0].weight != 0).all())
    assert torch.isfinite(dropped(x)).all() and not torch.allclose(dropped(x), kept(x))
    assert dropped.n_params_per_shape() == kept.n_params_per_shape() - 32 * 3
    with pytest.raises(ValueError, match="needs fourier_features"):
        SDFNetwork(3, 8, 2, fourier_keep_input=False)


def test_geometric_inits_follow_igr_and_sal_code():
    """Hidden W ~ N(0, 2/fan_out), b = 0 for both; last layer W ~ N(sqrt(pi)/sqrt(fan_in), 1e-5^2)
    (IGR) or N(2 sqrt(pi)/sqrt(fan_in), 1e-6^2) (SAL), b = -1. With ReLU the hidden layers keep
    |h| ~ |x|, so SAL starts at u ~ 2|x| - 1 (zero level set at radius 0.5); IGR's softplus
    (beta 100) bends the small pre-activations, so its start is only monotone in |x|."""
    sal = SDFNetwork(3, 512, 4, "linear", "relu", "geometric_sal", None, weight_norm=True)
    igr = SDFNetwork(3, 512, 4, "linear", "softplus", "geometric_relu", None, skip_in=(2,))
    for net, mean, std in (
        (sal, 2 * math.sqrt(math.pi / 512), 1e-6),
        (igr, math.sqrt(math.pi / 512), 1e-5),
    ):
        last = net.layers[-1]
        assert float(last.weight.detach().mean()) == pytest.approx(mean, rel=1e-4)
        assert float(last.weight.detach().std()) == pytest.approx(std, rel=0.2)
        assert torch.all(last.bias == -1.0)
        hidden = net.layers[1]
        weight = hidden.weight() if isinstance(hidden, WeightNormLinearLayer) else hidden.weight
        assert float(weight.detach().std()) == pytest.approx(
            math.sqrt(2 / weight.shape[1]), rel=0.02
        )
        assert torch.all(hidden.bias == 0.0)
    assert igr.layers[1].weight.shape[1] == 509  # room for x before the skip layer
    assert float(igr.layers[1].weight.detach().std()) == pytest.approx(math.sqrt(2 / 509), rel=0.02)
    directions = torch.nn.functional.normalize(torch.randn(1, 400, 3), dim=-1)
    with torch.no_grad():
        for radius in (0.25, 0.5, 0.75):
            assert float(sal(radius * directions).mean()) == pytest.approx(2 * radius - 1, abs=0.1)
        igr_u = [float(igr(r * directions).mean()) for r in (0.0, 0.25, 0.5, 0.75)]
    assert igr_u[0] < 0 and igr_u == sorted(igr_u)


def test_phase_log_transform_inverts_the_phase_profile():
    eps = 0.01
    d = torch.tensor([-0.3, -0.05, 0.0, 0.02, 0.4], dtype=torch.float64)
    u = torch.sign(d) * (1 - torch.exp(-d.abs() / math.sqrt(eps)))
    assert torch.allclose(phase_distance(u, eps), d, atol=1e-12)
    # u = 1 - e^-1 is one transition width sqrt(eps) = 0.1 away
    assert float(phase_distance(torch.tensor(1 - math.exp(-1.0)), eps)) == pytest.approx(0.1)
    # overshoots keep their sign and stay finite
    w = phase_distance(torch.tensor([-1.5, 1.0, 2.0]), eps)
    assert torch.isfinite(w).all() and (w.sign() == torch.tensor([-1.0, 1.0, 1.0])).all()
    net = _net("phase", [0])
    x = torch.rand(1, 30, 3, dtype=torch.float64) * 2 - 1
    assert torch.allclose(net(x), phase_distance(net.implicit(x), 0.04))


def test_parameter_counts_of_igr_and_sal_match_their_code():
    """IGR (amosgropp/IGR code/model/network.py with setup.conf: dims 8 x 512, skip_in [4],
    d_in 3): layer l maps dims[l] -> dims[l+1], and the layer before the skip outputs
    512 - 3 = 509 so that [h, x] is 512 wide again:
        3*512 + 512            =     2,048   (layer 0)
        6 * (512*512 + 512)    = 1,575,936   (layers 1, 2, 4, 5, 6, 7)
        512*509 + 509          =   261,117   (layer 3)
        512 + 1                =       513   (layer 8)
        total                  = 1,839,614
    SAL (matanatz/SAL code/model/network.py Decoder with recon.conf: dims 8 x 512, weight norm on
    layers 0-7, latent size 0): weight norm adds one gain per output row (weight_g [out, 1]):
        3*512 + 512 + 512      =     2,560   (layer 0)
        7 * (512*512 + 2*512)  = 1,842,176   (layers 1-7)
        512 + 1                =       513   (layer 8, no weight norm)
        total                  = 1,845,249
    IGR+FF and PHASE+FF add 2 * 256 Fourier columns to the first layer: 512 * 512 = 262,144 more.
    """
    counts = {"igr_wo_n": 1_839_614, "sal": 1_845_249, "igr_ff": 2_101_758, "phase_ff": 2_101_758}
    for name, count in counts.items():
        config = preset(name, "srb")
        net = SDFNetwork(3, n_shapes=2, seeds=[0, 1], **network_kwargs(config))
        assert net.n_params_per_shape() == count, name
    assert 2_048 + 6 * 262_656 + 261_117 + 513 == counts["igr_wo_n"]
    assert 2_560 + 7 * 263_168 + 513 == counts["sal"]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="skip_in"):
        SDFNetwork(3, 16, 3, skip_in=(7,))
    with pytest.raises(ValueError, match="weight_norm"):
        SDFNetwork(3, 16, 3, "quadratic", weight_norm=True)
    with pytest.raises(ValueError, match="output_map"):
        SDFNetwork(3, 16, 3, output_map="tanh")
    with pytest.raises(ValueError, match="fourier"):
        SDFNetwork(3, 16, 3, fourier_features=4, fourier_scale=0.0)
