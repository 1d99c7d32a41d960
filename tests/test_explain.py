"""Explanations: the nearest teacher descriptions to a generated E_m."""

import numpy as np

from cotvtm.prior.explain import ExplanationIndex, pool


def test_nearest_description_is_the_one_whose_embedding_was_generated(tmp_path):
    rng = np.random.default_rng(0)
    e_m = rng.standard_normal((4, 6, 8)).astype(np.float32)
    mask = np.ones((4, 6), np.int64)
    mask[:, 4:] = 0
    texts = ["calm piano", "energetic drums", "dark strings", "calm piano"]  # a duplicate is kept once
    index = ExplanationIndex.build(texts, e_m, mask)
    assert index.texts == texts[:3]
    index.save(tmp_path)
    loaded = ExplanationIndex.load(tmp_path)
    query = e_m[[2, 1]] + 0.05 * rng.standard_normal((2, 6, 8)).astype(np.float32)
    query[:, 4:] = 99.0  # padded positions must not count
    best = loaded.nearest(query, mask[:2], k=2)
    assert [row[0]["description"] for row in best] == ["dark strings", "energetic drums"]
    assert best[0][0]["score"] > best[0][1]["score"] and best[0][0]["score"] > 0.9
    assert ExplanationIndex.load(tmp_path / "absent") is None
    np.testing.assert_allclose(np.linalg.norm(pool(e_m, mask), axis=1), 1.0, rtol=1e-5)
