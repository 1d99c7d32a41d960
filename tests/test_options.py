"""The soundtrack job's settings, defined once: every field is a flag and an API setting, and a
bad value is refused with the same message either way. Parsing and configuration only."""

import re
from dataclasses import fields

import pytest

import cotvtm
from cotvtm.cli import main, parser
from tests.helpers import parsed_config as _config
from cotvtm.settings import SETTINGS, Resources, SoundtrackConfig, configure
from cotvtm.errors import CotvtmError
from cotvtm.options import flag, settings

CLASSES = SETTINGS
# flags whose names differ from their fields'; scripts and manifests use them
NAMED = {"window_s": "--window-seconds", "prompt_s": "--prompt-seconds", "crossfade_s": "--crossfade-seconds",
         "stream_min_s": "--stream-min-seconds", "max_duration_s": "--max-duration",
         "teacher_json_mode": "--teacher-no-json-mode"}


def _soundtrack_flags() -> dict:
    """The soundtrack subcommand's flags -> the field each one fills."""
    sub = next(a for a in parser()._actions if a.dest == "command").choices["soundtrack"]
    return {s: a.dest for a in sub._actions for s in a.option_strings}


def _parsed(*argv: str):
    return _config(parser().parse_args(["soundtrack", "in", "out", "--device", "cpu", *argv]))


@pytest.fixture
def job(monkeypatch):
    """What ``cotvtm.soundtrack`` would run: its (where, config, resources), and no run."""
    import cotvtm.pipelines.runner as runner

    calls = []
    monkeypatch.setattr(runner, "run", lambda where, cfg, res, echo: calls.append((where, cfg, res)))
    return calls


def test_every_setting_is_a_flag_named_as_before():
    flags = _soundtrack_flags()
    for cls in CLASSES:
        for f in settings(cls):
            expected = NAMED.get(f.name, "--" + f.name.replace("_", "-"))
            assert flag(f) == expected and flags[expected] == f.name, f.name
    assert [f.name for f in fields(SoundtrackConfig) if f not in settings(SoundtrackConfig)] == ["models", "teacher"]
    assert "--video-batch" not in flags


def test_every_setting_is_accepted_by_the_api(job):
    values = {f.name: getattr(cls(), f.name) for cls in CLASSES for f in settings(cls)}
    cotvtm.soundtrack("in", "out", **values)
    [(where, cfg, res)] = job
    assert cfg == SoundtrackConfig() and res == Resources() and not where.include_hidden
    with pytest.raises(CotvtmError, match="unknown setting.*video_batch"):
        cotvtm.soundtrack("in", "out", video_batch=4)


@pytest.mark.parametrize("argv, setting, message", [
    (["--duck-gain", "2"], {"duck_gain": 2.0}, "--duck-gain must be in (0, 1]"),
    (["--prompt-seconds", "12"], {"prompt_s": 12.0}, "--prompt-seconds must be positive and shorter than the window"),
    (["--crossfade-seconds", "3"], {"crossfade_s": 3.0}, "--crossfade-seconds must be between 0 and the prompt length"),
    (["--slots", "0"], {"slots": 0}, "--slots must be at least 1"),
    (["--segment-windows", "0"], {"segment_windows": 0}, "--segment-windows must be at least 1"),
    (["--max-duration", "-1"], {"max_duration_s": -1.0},
     "--max-duration must be a positive number of seconds, not -1.0"),
    (["--loudness", "-2"], {"loudness": -2.0}, "--loudness must be between -70 and -5 LUFS"),
])
def test_a_bad_value_has_one_message_from_the_cli_and_the_api(argv, setting, message, capsys, job):
    with pytest.raises(CotvtmError, match=re.escape(message)):
        _parsed(*argv)
    assert main(["soundtrack", "in", "out", "--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(CotvtmError, match=re.escape(message)):
        cotvtm.soundtrack("in", "out", device="cpu", **setting)
    assert not job  # refused before any run


def test_a_value_of_the_wrong_type_is_refused_by_name(job):
    with pytest.raises(CotvtmError, match="--window-seconds must be a number, not '10'"):
        cotvtm.soundtrack("in", "out", window_s="10")
    with pytest.raises(CotvtmError, match="--slots must be an integer"):
        cotvtm.soundtrack("in", "out", slots=2.5)


def test_each_stage_is_sized_on_its_own(job):
    _, res = _parsed("--slots", "3", "--embed-batch", "5", "--prior-batch", "6", "--videos-in-flight", "7",
                     "--music-gpus", "0.5")
    assert (res.slots, res.embed_batch, res.prior_batch, res.videos_in_flight) == (3, 5, 6, 7)
    assert (res.stage("music"), res.stage("embed")) == ((1, 0.25, 0.5), (1, 0.25, 0.0))
    with pytest.warns(FutureWarning, match="segments_per_batch is renamed embed_batch, prior_batch"):
        cotvtm.soundtrack("in", "out", device="cpu", slots=2, segments_per_batch=6, videos_in_flight=9)
    [(_, _, res)] = job
    assert (res.slots, res.embed_batch, res.prior_batch, res.videos_in_flight) == (2, 6, 6, 9)
    gpu = Resources.detect(device="cuda", slots=24)
    assert (gpu.slots, gpu.embed_batch, gpu.prior_batch, gpu.videos_in_flight) == (24, 16, 16, 32)
    shares = [gpu.stage(name)[2] for name in ("embed", "prior", "music")]
    assert sum(shares) <= 1 and shares[2] > shares[0] > 0  # the decoder holds the largest share of one GPU
    assert (Resources().slots, Resources().embed_batch, Resources().videos_in_flight) == (4, 4, 8)


def test_unset_resources_are_left_to_detect_and_bools_are_switches():
    cfg, res = _parsed("--image-video", "--decode-actors", "3")
    assert cfg.image_video and res.decode_actors == 3 and res == Resources(decode_actors=3)
    assert not _parsed()[0].image_video


def _help_of_each_flag(monkeypatch, capsys) -> dict[str, str]:
    """``cotvtm soundtrack --help`` as printed, each flag's help on one line (a wide terminal)."""
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit) as done:
        main(["soundtrack", "--help"])
    assert done.value.code == 0
    helps, flag_now = {}, None
    for line in capsys.readouterr().out.splitlines():
        found = re.fullmatch(r"  (--[a-z0-9-]+)(?: \S+)?(?:\s{2,}(.*))?", line)  # the help here, or below
        if found:
            flag_now = found[1]
            helps[flag_now] = found[2] or ""
        elif flag_now and line.startswith("      "):
            helps[flag_now] = f"{helps[flag_now]} {line.strip()}".strip()
        else:
            flag_now = None
    return helps


def test_help_says_every_default_once(monkeypatch, capsys):
    helps = _help_of_each_flag(monkeypatch, capsys)
    for cls in CLASSES:
        for f in settings(cls):
            said = helps[flag(f)]
            assert said, flag(f)  # --preset too
            if getattr(cls(), f.name) not in (None, False, True):  # a value, not "not set" or a switch
                assert "default" in said, (flag(f), said)
            assert said.count("(default: ") <= 1 and not ("(default " in said and "(default: " in said), said
    assert helps["--window-seconds"].endswith("(default: 10)")
    assert helps["--max-duration"].endswith(f"(default: {Resources().max_duration_s:g}: 24 h)")
    assert helps["--preset"].endswith("(default: tiny)")
    for machine_decided in ("--slots", "--decode-actors", "--device", "--embed-batch", "--music-gpus"):
        assert "(default: by the machine: " in helps[machine_decided], helps[machine_decided]
    assert "(default: by the machine: 4; 16 with cuda)" in helps["--slots"]
    gpu = Resources.detect(device="cuda")
    assert (Resources().slots, gpu.slots, gpu.embed_batch, gpu.videos_in_flight) == (4, 16, 16, 32)


def test_resign_goes_with_signing():
    with pytest.raises(CotvtmError, match="--resign needs --sign-cert and --sign-key"):
        configure(resign=True)
    assert configure(resign=True, sign_cert="c.pem", sign_key="k.pem")[2].resign
