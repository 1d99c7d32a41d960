"""The Python API: the four jobs as functions, for notebooks and other programs.

    import cotvtm

    summary = cotvtm.soundtrack("videos/", "out/", mode="continuous", slots=4)
    built = cotvtm.label("data", manifests=["captions.jsonl"], scenes=100)
    index = cotvtm.embed(built.labels_dir, "shards", preset="tiny")
    result = cotvtm.distill("shards", "distilled", arch="tiny", num_workers=2)
    cotvtm.soundtrack("videos/", "out/", prior=str(result.prior_dir))

Settings are the fields of the jobs' configuration classes, by name; a name that none of
them has is an error that says so. The command line and the Ray jobs parse their options into
the same configurations and call these functions.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from cotvtm.options import split as _split


def soundtrack(input: str, output: str, *, config=None, resources=None, echo=print, **settings):
    """Soundtrack every video under ``input`` (a folder, a file or ``s3://`` prefix) into ``output``.

    ``settings``: the fields of ``ModelChoice`` (``preset``, ``clip``, ``prior``, ...),
    ``SoundtrackConfig`` (``mode``, ``window_s``, ``decoder``, ``seed``, ...), ``Resources``
    (``slots``, ``segments_per_batch``, ``videos_in_flight``, ``device``, ...) and ``Access``
    (``endpoint_url``, ``cache_dir``, ``include_hidden``, ``commercial``, ``sign_cert``,
    ``sign_key``), the same settings as the command line's flags, over ``config`` and
    ``resources`` when given. Returns the run's ``Summary`` (``ok``, ``failed``, ``outcomes``...). A bad input never raises; a set-up error does
    (``CotvtmError``): a setting out of range, a model reference that is missing or unreadable,
    or a model that does not load in its stage.
    """
    from cotvtm.settings import configure

    cfg, res, access = configure(config, resources, **settings)
    from cotvtm.pipelines.runner import Where, run  # after the settings are checked: no Ray for a typo

    cache_dir = Path(access.cache_dir) if access.cache_dir else None
    where = Where(str(input), str(output), **{**asdict(access), "cache_dir": cache_dir})  # Access's fields, by name
    return run(where, cfg, res, echo)


def label(out: str, *, config=None, echo=print, **settings):
    """Label captions (``manifests``) and/or ``scenes`` generated scene descriptions with the
    chain-of-thought teacher into ``out/labels-<prompt>-<model>/``; ``endpoint`` (an
    ``EndpointConfig``) names an LLM, none the offline teacher. Returns the ``BuildSummary``."""
    from cotvtm.teacher.build import build_labels
    from cotvtm.teacher.settings import BuildConfig

    [given] = _split(settings, BuildConfig)
    if "manifests" in given:
        given["manifests"] = tuple(str(m) for m in given["manifests"])
    cfg = replace(config, **given) if config is not None else BuildConfig(out=str(out), **given)
    return build_labels(replace(cfg, out=str(out)), echo=echo)


def embed(labels: str, out: str, *, preset: str = "tiny", music_len: int | None = None, device: str | None = None,
          cache_dir: str | Path | None = None, batch_size: int = 64, decoder: str | None = None, **models):
    """Embed a labels folder into shards (E_v, E_r, E_m); ``models`` may name ``clip``, ``t5``
    and ``rationale`` over the preset's; ``decoder``: the one whose text space E_m is in (its own
    text encoder; default T5, which MusicGen and Stable Audio Open read). Returns the shards'
    ``ShardIndex``."""
    from cotvtm import models as registry
    from cotvtm.settings import default_device
    from cotvtm.errors import CotvtmError
    from cotvtm.training.embed import run_embed
    from cotvtm.training.hyperparameters import PAPER_MUSIC_LEN, TINY_MUSIC_LEN

    if set(models) - {"clip", "t5", "rationale"}:
        raise CotvtmError(f"unknown setting(s): {', '.join(sorted(set(models) - {'clip', 't5', 'rationale'}))}")
    refs = registry.resolve(preset, cache_dir=cache_dir, decoder=decoder or "engine", **models)
    length = music_len or (TINY_MUSIC_LEN if preset == "tiny" else PAPER_MUSIC_LEN)
    return run_embed(str(labels), str(out), refs, length, device=device or default_device(), batch_size=batch_size)


def distill(shards: str, out: str, *, config=None, storage_path: str | None = None, **settings):
    """Train the two-stage prior on ``shards`` with Ray Train into ``out`` (``out/prior`` is what
    ``soundtrack(prior=...)`` loads). ``settings``: ``DistillConfig`` fields. Returns the
    ``DistillResult``."""
    from cotvtm.raycluster import init_ray
    from cotvtm.training.hyperparameters import DistillConfig
    from cotvtm.training.distill import distill as train

    [given] = _split(settings, DistillConfig)
    cfg = replace(config or DistillConfig(), **given)
    init_ray()
    return train(str(shards), str(out), cfg, storage_path=storage_path)
