"""The distilled prior: cosine schedule + samplers, EmbedDiff, the two-stage prior, checkpoints."""

import json

import pytest
import torch

from cotvtm.errors import ModelError
from cotvtm.prior import CosineSchedule, PriorConfig, TwoStagePrior
from cotvtm.prior.prior import token_mask


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models on a shared 2-core box run ~5x faster on one thread: torch's threads contend.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_prior(seed=0, **overrides):
    torch.manual_seed(seed)
    return TwoStagePrior(PriorConfig.tiny(**overrides)).eval()


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---- config ------------------------------------------------------------------------------


def test_config_round_trips_through_json():
    config = PriorConfig.tiny(variant="no_rationale", sampler="ddim", guidance_scale=2.5, trained=True)
    again = PriorConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert PriorConfig.paper().rationale_dim == 4096 and PriorConfig.paper().music_len == 64
    with pytest.raises(ValueError, match="unknown"):
        PriorConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="variant"):
        PriorConfig.tiny(variant="mlp_diff")


# ---- schedule ----------------------------------------------------------------------------


def test_cosine_alphas_cumprod():
    ab = CosineSchedule(1000).alphas_cumprod
    assert ab.shape == (1000,)
    assert bool((ab[1:] < ab[:-1]).all()), "strictly decreasing"
    assert bool((ab > 0).all()) and bool((ab <= 1).all())
    assert ab[0] > 0.9999 and ab[-1] < 1e-6
    assert abs(float(ab[500]) - 0.5) < 0.05  # cosine: about half the signal at the midpoint


def test_q_sample_endpoints():
    schedule = CosineSchedule()
    x0, noise = torch.randn(2, 3, 4, generator=gen(0)), torch.randn(2, 3, 4, generator=gen(1))
    at_start = schedule.q_sample(x0, torch.zeros(2, dtype=torch.long), noise)
    at_end = schedule.q_sample(x0, torch.full((2,), 999), noise)
    assert torch.allclose(at_start, x0, atol=0.03)
    assert torch.allclose(at_end, noise, atol=1e-3)


def test_training_loss_ignores_masked_tokens():
    schedule = CosineSchedule()
    x0, noise = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    wrong_where_masked = noise + 5 * (1 - mask)[..., None]  # exact where mask = 1
    loss = schedule.training_loss(lambda x, t: wrong_where_masked, x0, noise=noise, mask=mask)
    assert float(loss) == 0.0
    assert float(schedule.training_loss(lambda x, t: wrong_where_masked, x0, noise=noise)) > 1


def test_respaced_timesteps():
    schedule = CosineSchedule(1000)
    ts = schedule.respaced_timesteps(200)
    assert len(ts) == 200 and ts[0] == 0 and ts[-1] == 995
    assert set((ts[1:] - ts[:-1]).tolist()) == {5}
    assert schedule.respaced_timesteps(1000).tolist() == list(range(1000))
    with pytest.raises(ValueError):
        schedule.respaced_timesteps(1001)


def gaussian_eps_fn(schedule, mu, sigma):
    """Exact epsilon for data x0 ~ N(mu, sigma^2): E[eps | x_t]."""

    def eps_fn(x, t):
        ab = schedule.alphas_cumprod[t].float().view(-1, 1, 1)
        return (x - ab.sqrt() * mu) * (1 - ab).sqrt() / (ab * sigma**2 + 1 - ab)

    return eps_fn


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_samplers_recover_a_gaussian_with_the_exact_eps(method):
    schedule = CosineSchedule()
    x = schedule.sample(gaussian_eps_fn(schedule, 2.0, 0.5), (4000, 4, 1), steps=200, method=method, generator=gen(0))
    assert x.shape == (4000, 4, 1) and bool(torch.isfinite(x).all())
    assert abs(float(x.mean()) - 2.0) < 0.03
    assert abs(float(x.std()) - 0.5) < 0.02


def test_ddim_eta0_draws_only_the_start_noise():
    schedule = CosineSchedule()
    eps_fn = gaussian_eps_fn(schedule, 1.0, 0.3)
    g = gen(7)
    a = schedule.sample(eps_fn, (3, 4, 2), steps=20, method="ddim", eta=0.0, generator=g)
    b = schedule.sample(eps_fn, (3, 4, 2), steps=20, method="ddim", eta=0.0, generator=gen(7))
    assert torch.equal(a, b)
    reference = gen(7)
    torch.randn((3, 4, 2), generator=reference)
    assert torch.equal(g.get_state(), reference.get_state()), "eta=0 must not draw per-step noise"
    c = schedule.sample(eps_fn, (3, 4, 2), steps=20, method="ddim", eta=0.0, generator=gen(8))
    assert not torch.allclose(a, c)
    d = schedule.sample(eps_fn, (3, 4, 2), steps=20, method="ddim", eta=1.0, generator=gen(7))
    assert not torch.allclose(a, d), "eta=1 adds noise"


# ---- EmbedDiff and guidance --------------------------------------------------------------


def diff_inputs(config, b=3, seed=0):
    g = gen(seed)
    x = torch.randn(b, config.music_len, config.music_dim, generator=g)
    t = torch.randint(0, config.train_steps, (b,), generator=g)
    e_v = torch.randn(b, config.clip_dim, generator=g)
    e_r = torch.randn(b, config.rationale_dim, generator=g)
    return x, t, e_v, e_r


def test_cond_mask_switches_to_null_conditions():
    prior = tiny_prior()
    x, t, e_v, e_r = diff_inputs(prior.config)
    on, off = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        cond = prior.diff(x, t, e_v, e_r, on)
        uncond = prior.diff(x, t, e_v, e_r, off)
        uncond_other = prior.diff(x, t, torch.randn_like(e_v), torch.randn_like(e_r), off)
        mixed = prior.diff(x, t, e_v, e_r, torch.tensor([True, False, True]))
    assert not torch.allclose(cond, uncond, atol=1e-4)
    assert torch.allclose(uncond, uncond_other, atol=1e-6), "masked rows must not see their conditions"
    assert torch.allclose(mixed[[0, 2]], cond[[0, 2]], atol=1e-6) and torch.allclose(mixed[1], uncond[1], atol=1e-6)


def test_guidance_combines_cond_and_uncond_rows():
    prior = tiny_prior()
    x, t, e_v, e_r = diff_inputs(prior.config)
    on, off = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        cond = prior.diff(x, t, e_v, e_r, on)
        uncond = prior.diff(x, t, e_v, e_r, off)
        guided = {s: prior.guided_eps_fn(e_v, e_r, s)(x, t) for s in (1.0, 0.0, 3.0)}
    assert torch.allclose(guided[1.0], cond, atol=1e-6)
    assert torch.allclose(guided[0.0], uncond, atol=1e-5)
    assert torch.allclose(guided[3.0], uncond + 3.0 * (cond - uncond), atol=1e-4)


def test_toy_conditional_distribution_is_learned_and_sampled():
    """Two E_v conditions, each with one fixed zero-padded E_m: training loss, conditioning,
    condition dropout and both samplers must agree for the right target to come back."""
    prior = tiny_prior(seed=0).train()
    c = prior.config
    g = gen(0)
    e_v = torch.randn(2, c.clip_dim, generator=g)
    e_r = torch.randn(2, c.rationale_dim, generator=g)
    e_m = torch.randn(2, c.music_len, c.music_dim, generator=g)
    e_m[0, 5:] = 0  # 5 real tokens
    e_m[1, 7:] = 0  # 7 real tokens
    rows = torch.arange(64) % 2
    opt = torch.optim.AdamW(prior.parameters(), lr=2e-3)
    for _ in range(300):
        loss = prior.rationale_loss(e_v[rows], e_r[rows]) + prior.music_loss(e_v[rows], e_r[rows], e_m[rows], g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for method, ratio in (("ddpm", 0.25), ("ddim", 0.6)):
        out, mask = prior.sample(e_v, steps=25, method=method, guidance_scale=3.0, generator=gen(1))
        dist = torch.cdist(out.flatten(1), e_m.flatten(1))  # dist[i, j]: sample i to target j
        assert dist[0, 0] < ratio * dist[0, 1] and dist[1, 1] < ratio * dist[1, 0], (method, dist)
        if method == "ddpm":
            assert mask.sum(1).tolist() == [5, 7]


# ---- the prior ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["full", "mlp_mlp", "no_rationale"])
@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_variants_build_and_sample(variant, method):
    prior = tiny_prior(variant=variant)
    c = prior.config
    assert (prior.mlp is None) == (variant == "no_rationale")
    assert (prior.diff is None) == (variant == "mlp_mlp")
    e_m, mask = prior.sample(torch.randn(3, c.clip_dim), steps=10, method=method, generator=gen(0))
    assert e_m.shape == (3, c.music_len, c.music_dim) and e_m.dtype == torch.float32
    assert mask.shape == (3, c.music_len) and mask.dtype == torch.long
    assert bool(torch.isfinite(e_m).all()) and bool((mask[:, 0] == 1).all())
    if variant != "no_rationale":
        assert prior.forward_rationale(torch.randn(3, c.clip_dim)).shape == (3, c.rationale_dim)


def test_sample_restores_train_mode_and_honours_music_scale():
    prior = tiny_prior().train()
    e_v = torch.randn(2, prior.config.clip_dim, generator=gen(3))
    a, _ = prior.sample(e_v, steps=5, generator=gen(0))
    assert prior.training
    prior.config.music_scale = 4.0
    b, _ = prior.sample(e_v, steps=5, generator=gen(0))
    assert torch.allclose(b * 4.0, a, atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    prior = tiny_prior(seed=3, trained=True)
    e_v = torch.randn(2, prior.config.clip_dim, generator=gen(5))
    prior.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["model_type"] == "cotvtm-prior" and config["trained"] is True
    loaded = TwoStagePrior.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == prior.config and not loaded.training
    a, mask_a = prior.sample(e_v, steps=10, generator=gen(9))
    b, mask_b = loaded.sample(e_v, steps=10, generator=gen(9))
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b)
    c, _ = tiny_prior(seed=4).sample(e_v, steps=10, generator=gen(9))
    assert not torch.allclose(a, c), "different weights must give different samples"


def test_from_pretrained_rejects_other_checkpoints(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        TwoStagePrior.from_pretrained(tmp_path)
    tiny_prior().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    with pytest.raises(ModelError, match="model_type"):
        TwoStagePrior.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "music_len": config["music_len"] + 1}))
    with pytest.raises(RuntimeError):  # strict load: shapes must match the config
        TwoStagePrior.from_pretrained(tmp_path)


def test_token_mask_marks_zero_padding():
    e_m = torch.zeros(3, 5, 4)
    e_m[0, :3] = 1.0  # 3 real tokens, then zero padding
    e_m[1, :2] = 2.0
    e_m[1, 2:] = 0.05  # small residue from sampling, below 0.1 x the row's max RMS
    e_m[2, 1] = 1.0  # first token near zero: still kept
    mask = token_mask(e_m, threshold=0.1)
    assert mask.dtype == torch.long
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]
    assert token_mask(e_m, threshold=0.01)[1].tolist() == [1, 1, 1, 1, 1]
    assert token_mask(torch.zeros(1, 3, 2), 0.1).tolist() == [[1, 0, 0]]  # all padding: first token only
