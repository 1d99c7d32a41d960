"""The metric math against closed forms and its edge cases (numpy only, fast)."""

import numpy as np
import pytest
import scipy.linalg

from cotvtm.eval import metrics
from cotvtm.eval.metrics import Gaussian


def _gauss(mean, cov):
    return Gaussian(np.asarray(mean, float), np.asarray(cov, float), 2)


def test_frechet_distance_of_two_diagonal_gaussians_is_the_closed_form():
    a = _gauss([0.0, 1.0, 2.0], np.diag([1.0, 4.0, 9.0]))
    b = _gauss([1.0, 1.0, 0.0], np.diag([4.0, 1.0, 1.0]))
    # ||mu_a - mu_b||^2 + sum (sqrt(s_a) - sqrt(s_b))^2 for commuting covariances
    expected = (1 + 0 + 4) + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)
    assert metrics.frechet_distance(b, a) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_matches_the_sqrtm_formula_on_full_covariances():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    c1, c2 = x @ x.T + np.eye(6), y @ y.T + 0.5 * np.eye(6)
    m1, m2 = rng.standard_normal(6), rng.standard_normal(6)
    reference = (m1 - m2) @ (m1 - m2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert metrics.frechet_distance(_gauss(m1, c1), _gauss(m2, c2)) == pytest.approx(reference, rel=1e-9)


def test_scaled_isotropic_gaussians():
    # N(0, s^2 I_d) vs N(0, t^2 I_d): d (s - t)^2
    d = 16
    assert metrics.frechet_distance(_gauss(np.zeros(d), 4 * np.eye(d)), _gauss(np.zeros(d), np.eye(d))) == \
        pytest.approx(d * (2 - 1) ** 2)


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(1).standard_normal((50, 8))
    assert metrics.frechet_between(x, x) == pytest.approx(0.0, abs=1e-9)


def test_singular_covariances_give_finite_exact_values():
    rng = np.random.default_rng(2)
    # 5 samples in 64 dimensions: rank-4 covariances, the usual case for small test sets
    a, b = rng.standard_normal((5, 64)), rng.standard_normal((5, 64)) + 1.0
    value = metrics.frechet_between(a, b)
    assert np.isfinite(value) and value > 0
    ga, gb = metrics.gaussian(a), metrics.gaussian(b)
    with np.errstate(all="ignore"):
        root = scipy.linalg.sqrtm(ga.cov @ gb.cov)
    sqrtm_value = (ga.mean - gb.mean) @ (ga.mean - gb.mean) + np.trace(ga.cov + gb.cov - 2 * root.real)
    assert value == pytest.approx(sqrtm_value, rel=1e-4)
    # constant features: zero covariance, the distance is just between the means
    const_a, const_b = np.ones((7, 3)), np.full((7, 3), 3.0)
    assert metrics.frechet_between(const_a, const_b) == pytest.approx(3 * 4.0)


def test_one_sample_is_a_point_mass():
    a, b = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    assert metrics.gaussian(a).cov.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert metrics.frechet_between(a, b) == pytest.approx(25.0)
    many = np.array([[1.0, 0.0], [-1.0, 0.0]])  # mean 0, var 2 on the first axis (ddof 1)
    assert metrics.frechet_between(many, a) == pytest.approx(2.0)


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        metrics.frechet_between(np.zeros((0, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="sizes differ"):
        metrics.frechet_between(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.frechet_between(np.full((3, 4), np.nan), np.zeros((3, 4)))


def test_kl_softmax_of_known_distributions():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    expected = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    # logits are log-probabilities up to a constant: softmax recovers p and q
    assert metrics.kl_softmax(np.log(q) + 3.0, np.log(p)) == pytest.approx(expected, abs=1e-5)
    assert metrics.kl_softmax(np.log(p), np.log(p)) == pytest.approx(0.0, abs=1e-5)
    # the mean over pairs
    both = metrics.kl_softmax(np.log(np.vstack([q, p])), np.log(np.vstack([p, p])))
    assert both == pytest.approx(expected / 2, abs=1e-5)


def test_kl_sigmoid_is_audioldm_evals_per_class_sum():
    ref, gen = np.array([[0.0, 2.0, -1.0]]), np.array([[1.0, -1.0, -1.0]])
    p, q = 1 / (1 + np.exp(-ref)), 1 / (1 + np.exp(-gen))
    assert metrics.kl_sigmoid(gen, ref) == pytest.approx(float((p * np.log(p / q)).sum()), abs=1e-5)
    assert metrics.kl_sigmoid(ref, ref) == pytest.approx(0.0, abs=1e-5)


def test_kl_handles_zero_probabilities_and_shape_errors():
    assert metrics.kl(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2), abs=1e-5)
    assert metrics.kl(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(
        0.5 * np.log(0.5 / (1 + 1e-6)) + 0.5 * np.log(0.5 / 1e-6))
    with pytest.raises(ValueError, match="paired"):
        metrics.kl_softmax(np.zeros((2, 3)), np.zeros((3, 3)))


def test_paired_cosine_and_emotion_distance():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0]])
    assert metrics.paired_cosine(a, b) == pytest.approx(0.5)
    assert metrics.paired_cosine(np.zeros((1, 3)), np.ones((1, 3))) == 0.0  # silence embeds to zero: no NaN
    assert metrics.emotion_distance(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[3.0, 4.0], [1.0, 1.0]])) == \
        pytest.approx(2.5)
    with pytest.raises(ValueError, match="valence-arousal"):
        metrics.emotion_distance(np.zeros((2, 3)), np.zeros((2, 3)))


def test_truth_rank_counts_ties_against_the_truth():
    assert metrics.truth_rank(0.9, np.array([0.1, 0.2])) == 1
    assert metrics.truth_rank(0.5, np.array([0.6, 0.5, 0.1])) == 3


def test_precision_at_10_on_constructed_rankings():
    n = 70  # ground truth + exactly 69 distractors: every other reference is one
    reference = np.eye(n)
    stronger = [i % 20 for i in range(n)]  # item i has this many distractors closer than its truth
    generated = np.zeros((n, n))
    for i, count in enumerate(stronger):
        generated[i, i] = 1.0
        for j in range(1, count + 1):
            generated[i, (i + j) % n] = 2.0
    result = metrics.precision_at_k(generated, reference, k=10, distractors=69)
    assert result.candidates == 70 and result.k == 10
    assert result.hit_rate == pytest.approx(np.mean([s + 1 <= 10 for s in stronger]))
    assert result.mean_rank == pytest.approx(np.mean(stronger) + 1)


def test_precision_at_k_draws_distractors_at_random_and_reproducibly():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((200, 16))
    perfect = metrics.precision_at_k(features, features, k=1, distractors=69, seed=5)
    assert perfect.hit_rate == 1.0 and perfect.candidates == 70
    noisy = features + 3 * rng.standard_normal(features.shape)
    first = metrics.precision_at_k(noisy, features, seed=5)
    assert first == metrics.precision_at_k(noisy, features, seed=5)
    assert 0.0 < first.hit_rate < 1.0
    small = metrics.precision_at_k(features[:5], features[:5], k=10)
    assert small.candidates == 5 and small.hit_rate == 1.0
