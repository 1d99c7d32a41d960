"""Every model a run uses resolves to a licence, offline; --commercial refuses the others."""

import subprocess
import sys
from dataclasses import fields

import pytest

from cotvtm import licences, models
from cotvtm.errors import CotvtmError
from cotvtm.pipelines.runner import Summary
from cotvtm.report.collect import Collected, ReportEntry
from cotvtm.report.page import _licences
from cotvtm.report.totals import totals


def test_every_hub_id_of_every_preset_has_an_entry_with_its_model_card():
    for preset, refs in models.PRESETS.items():
        for f in fields(models.ModelRefs):
            ref = getattr(refs, f.name)
            if ref is not None:
                assert ref in licences.HUB, (preset, ref)
                found = licences.of(ref)
                assert found.commercial is not None and found.source == f"https://huggingface.co/{ref}"
    musicgen = licences.licences(models.PRESETS["fast"])["musicgen"]
    assert (musicgen.id, musicgen.commercial) == ("CC-BY-NC-4.0", False)


def test_the_fast_preset_with_stable_audio_is_cleared_for_commercial_use(tmp_path):
    """With ``--decoder stable-audio`` MusicGen is not loaded, so its licence is not the run's; Stable
    Audio Open's Community License allows commercial use (below a revenue threshold: the note)."""
    refs = models.resolve("fast", cache_dir=tmp_path, decoder="stable-audio")
    assert (refs.musicgen, refs.stable_audio) == (None, models.STABLE_AUDIO)
    found = licences.licences(refs)
    assert set(found) == {"clip", "t5", "prior", "bank", "stable_audio"}  # retrieval: no rationale encoder
    assert found["stable_audio"].commercial is True and "US$1M" in found["stable_audio"].note
    licences.check_commercial(refs, "fast", found=found)  # does not raise
    assert refs.fingerprint() != models.resolve("fast", cache_dir=tmp_path).fingerprint()
    with pytest.raises(CotvtmError, match="--musicgen facebook/musicgen-large: not used with --decoder stable-audio"):
        models.resolve("fast", cache_dir=tmp_path, decoder="stable-audio", musicgen="facebook/musicgen-large")


def test_a_local_folder_says_what_its_model_card_says(tmp_path):
    (tmp_path / "README.md").write_text("---\nlanguage: en\nlicense: apache-2.0\ntags:\n- music\n---\n# Mine\n")
    found = licences.of(str(tmp_path))
    assert (found.id, found.commercial) == ("Apache-2.0", True) and str(tmp_path) in found.source
    (tmp_path / "README.md").write_text("---\nlicense: other\nlicense_name: acme-research-only-nc\n---\n")
    assert (licences.of(str(tmp_path)).id, licences.of(str(tmp_path)).commercial) == ("acme-research-only-nc", False)
    (tmp_path / "README.md").unlink()
    assert (licences.of(str(tmp_path)).id, licences.of(str(tmp_path)).commercial) == ("unknown", None)
    assert licences.of("someone/not-on-record").commercial is None  # offline, not in the hub's cache


def test_tiny_models_are_cleared_and_pass_the_commercial_check(tiny_refs):
    found = licences.licences(tiny_refs)
    assert all(lic.commercial is True for lic in found.values()), found
    assert found["musicgen"].source == "built locally with random weights"
    licences.check_commercial(tiny_refs, "tiny")  # does not raise
    assert "not cleared" not in Summary(licences=found).line()


def test_commercial_names_each_model_not_cleared(tiny_refs, tmp_path):
    refs = models.ModelRefs(**{**tiny_refs.__dict__, "musicgen": "facebook/musicgen-large", "clip": str(tmp_path)})
    with pytest.raises(CotvtmError) as err:
        licences.check_commercial(refs, "tiny", given={"musicgen", "clip"})
    said = str(err.value)
    assert "--musicgen facebook/musicgen-large is CC-BY-NC-4.0 (not for commercial use" in said
    assert f"--clip {tmp_path} is licence unknown" in said and "--clip PATH" in said


def test_the_summary_line_and_the_report_say_so():
    found = licences.licences(models.PRESETS["fast"])
    line = Summary(output="out", manifest="out/manifest.jsonl", licences=found).line()
    assert line.startswith("cotvtm: 0 succeeded, 0 failed")
    assert line.endswith("; made with models not cleared for commercial use: musicgen (CC-BY-NC-4.0)")
    sidecar = {"licences": {name: lic.record() for name, lic in found.items()}}
    entry = ReportEntry({"key": "a.mp4", "status": "ok", "time": "t"}, sidecar=sidecar)
    html = _licences(totals(Collected([entry], {"a.mp4"}, 0)))
    assert "not cleared for commercial use: musicgen (CC-BY-NC-4.0)" in html


def test_cli_commercial_refuses_the_fast_preset_before_any_work(tmp_path):
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(tmp_path / "in"), str(out),
                           "--preset", "fast", "--decoder", "engine", "--commercial"], capture_output=True, text=True,
                          timeout=120)  # without --decoder, --commercial chooses Stable Audio 3 (test_stable_audio_3_job)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    assert "--commercial: musicgen (preset fast) facebook/musicgen-small is CC-BY-NC-4.0" in said
    assert "--musicgen PATH" in said and "Traceback" not in said and not out.exists()


def test_the_api_keyword_reaches_the_run(monkeypatch):
    import cotvtm
    import cotvtm.pipelines.runner as runner

    calls = []
    monkeypatch.setattr(runner, "run", lambda where, cfg, res, echo: calls.append(where))
    cotvtm.soundtrack("in", "out", device="cpu", commercial=True)
    cotvtm.soundtrack("in", "out", device="cpu")
    assert [where.commercial for where in calls] == [True, False]


def test_commercial_covers_the_captioner_and_the_teachers_declared_terms(tmp_path, model_cache):
    """A teacher run loads a captioner and sends captions to a teacher: both are checked, before any
    work, beside the models; the teacher's terms are what the user declared (``--teacher-terms``)."""
    from cotvtm.pipelines.runner import run
    from cotvtm.settings import Access
    from cotvtm.settings import Resources, configure

    (tmp_path / "in").mkdir()
    nc = tmp_path / "blip-nc"
    nc.mkdir()
    (nc / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n")

    def refused(terms, captioner):
        where = Access(source=str(tmp_path / "in"), dest=str(tmp_path / "out"), cache_dir=model_cache, commercial=True,
                       teacher_terms=terms)
        cfg, _, _ = configure(conditioning="teacher", teacher_model="some-llm", teacher_url="http://127.0.0.1:9/v1",
                              captioner=captioner)
        with pytest.raises(CotvtmError) as err:
            run(where, cfg, Resources(), echo=lambda _: None)
        return str(err.value)

    said = refused(None, None)  # the tiny preset's retrieval captioner loads no model
    assert said.startswith("--commercial: --teacher-model some-llm is unknown (not declared)")
    assert "--teacher-terms commercial" in said and "--captioner" not in said and "--musicgen" not in said
    said = refused("commercial", f"blip:{nc}")
    assert said.startswith(f"--commercial: --captioner {nc} is CC-BY-NC-4.0 (not for commercial use")
    assert "teacher" not in said.split(";")[0] and not (tmp_path / "out").exists()
    assert "--teacher-model some-llm is declared non-commercial" in refused("non-commercial", None)
    blip = licences.of("Salesforce/blip-image-captioning-large")  # the default captioner of real presets
    assert (blip.id, blip.commercial) == ("BSD-3-Clause", True)
    declared = licences.of_teacher("some-llm", "commercial")
    assert declared.commercial is True and declared.source == "--teacher-terms commercial (for some-llm)"
