"""``--variants N``: N tracks per input from one conditioning, each its own draws, named, recorded,
resumed and shown one by one."""

import json

import cotvtm
from cotvtm.pipelines.progress import video_id
from cotvtm.report.screenshot import dump_dom
from cotvtm.video.samples import make_video


def test_three_variants_per_input_from_one_conditioning(tmp_path, model_cache, ray_session):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_video(inputs / "a.mp4", duration=4, size="64x48", fps=4)
    make_video(inputs / "b.mp4", duration=3, size="64x48", fps=4, source="mandelbrot")
    lines = []
    summary = cotvtm.soundtrack(inputs, out, cache_dir=model_cache, variants=3, ending="cut", echo=lines.append)
    assert (summary.ok, summary.failed) == (6, 0)
    assert "pass 1/2: music conditioning for 2 inputs (0 resumed)" in lines  # once per input
    assert "pass 2/2: music and mux for 2 inputs (6 tracks)" in lines
    for key in ("a.mp4", "b.mp4"):
        sidecars = sorted(out.glob(f"{key}.*.json"))  # the variants' names sort together
        assert [p.name.split(".")[-2] for p in sidecars] == [sidecars[0].name.split(".")[-2], "v2", "v3"]
        said = [json.loads(p.read_text()) for p in sidecars]
        assert [s["variant"] for s in said] == [1, 2, 3]
        assert all(s["beats"] is None and s["warnings"] == [] for s in said)  # --ending cut: no beats tracked
        digests = [tuple(w["tokens_digest"] for w in s["windows"]) for s in said]
        assert len(set(digests)) == 3  # pairwise different music
        assert all((out / s["output"]).exists() for s in said)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted((r["key"], r["variant"]) for r in rows) == [(k, v) for k in ("a.mp4", "b.mp4") for v in (1, 2, 3)]
    assert not [p for p in (out / ".cotvtm-progress").rglob("*") if p.is_file()]  # removed once all are done

    dom = dump_dom((out / "report.html").resolve().as_uri())  # as Chromium builds the page
    assert dom.count("<section") == 2 and dom.count('<figure class="variant">') == 6 and dom.count("<video") == 6
    assert dom.count("variant 3</figcaption>") == 2

    digest = said[0]["config_digest"]
    left = out / ".cotvtm-progress" / digest / video_id("a.mp4") / "plan.json"  # as a run stopped before clearing
    left.parent.mkdir(parents=True)
    left.write_text("{}")
    again = cotvtm.soundtrack(inputs, out, cache_dir=model_cache, variants=3, ending="cut", echo=lambda _: None)
    assert (again.ok, again.skipped) == (0, 6) and not left.parent.exists()
    first = cotvtm.soundtrack(inputs, out, cache_dir=model_cache, ending="cut", echo=lambda _: None)
    assert (first.ok, first.skipped) == (0, 2)  # variant 1 is the track of a run without --variants
