"""The Python API: the jobs as functions, for notebooks and other programs.

    import cotvtm

    summary = cotvtm.soundtrack("videos/", "out/", mode="continuous", slots=4)
    built = cotvtm.label("data", manifests=["captions.jsonl"], scenes=100)
    index = cotvtm.embed(built.labels_dir, "shards", preset="tiny")
    result = cotvtm.distill("shards", "distilled", arch="tiny", num_workers=2)
    cotvtm.soundtrack("videos/", "out/", prior=str(result.prior_dir))
    cotvtm.evaluate("testset.jsonl", "eval", methods=("cot-vtm", "retrieval"))

Settings are the fields of the jobs' settings classes, by name (the flags' names with
underscores); a name that none of them has is an error that says so, an earlier name works for
one release and warns. The command line and the Ray jobs parse their options into the same
configurations and call these functions.
"""

from __future__ import annotations

from dataclasses import replace

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
    from cotvtm.pipelines.runner import run  # after the settings are checked: no Ray for a typo

    return run(replace(access, source=str(input), dest=str(output)), cfg, res, echo)


def label(out: str, *, config=None, echo=print, **settings):
    """Label captions (``manifests``) and/or ``scenes`` generated scene descriptions with the
    chain-of-thought teacher into ``out/labels-<prompt>-<model>/``. ``settings``: the fields of
    ``BuildConfig`` (``manifests``, ``scenes``, ``prompt``, ``actors``, ...) and the teacher
    endpoint's ``EndpointConfig`` (``teacher_model``, ``teacher_url``, ...; no model: the offline
    teacher), over ``config`` when given. Returns the ``BuildSummary``."""
    from cotvtm.teacher.build import build_labels
    from cotvtm.teacher.settings import build_config

    return build_labels(build_config(out, config, **settings), echo=echo)


def embed(labels: str, out: str, **settings):
    """Embed a labels folder into shards (E_v, E_r, E_m). ``settings``: the fields of
    ``Embedding`` (``preset``; ``clip``, ``t5`` and ``rationale`` over the preset's; ``decoder``,
    the one whose text space E_m is in; ``music_len``, ``device``, ...). Returns the shards'
    ``ShardIndex``."""
    from cotvtm import models as registry
    from cotvtm.settings import default_device
    from cotvtm.training.embed import run_embed
    from cotvtm.training.settings import Embedding

    [given] = _split(settings, Embedding)
    job = Embedding(labels=str(labels), out=str(out), **given)
    refs = registry.resolve(job.preset, cache_dir=job.cache_dir, decoder=job.decoder or "engine", clip=job.clip,
                            t5=job.t5, rationale=job.rationale)
    return run_embed(job.labels, job.out, refs, job.length(), device=job.device or default_device(),
                     batch_size=job.batch_size)


def distill(shards: str, out: str, *, config=None, **settings):
    """Train the two-stage prior on ``shards`` with Ray Train into ``out`` (``out/prior`` is what
    ``soundtrack(prior=...)`` loads). ``settings``: ``DistillConfig`` fields (over ``config``, or
    the paper's) and ``DistillRun``'s (``epochs1``, ``lr2``, ``storage_path``, ...). Returns the
    ``DistillResult``."""
    from cotvtm.raycluster import init_ray
    from cotvtm.training.hyperparameters import DistillConfig, DistillRun
    from cotvtm.training.distill import distill as train

    chosen, given = _split(settings, DistillConfig, DistillRun)
    job = DistillRun(shards=str(shards), out=str(out), **given)
    cfg = job.config(replace(config or DistillConfig(), **chosen))
    init_ray()
    return train(job.shards, job.out, cfg, storage_path=job.storage_path)


def evaluate(testset: str, out: str, *, echo=print, **settings):
    """Score every method (and ``external`` systems' audio) on the paired ``testset`` manifest
    into ``out`` (results.md/.csv/.json and plots). ``settings``: the fields of ``EvalConfig``
    (``methods``, ``preset``, ``prior_full``, ``window_s``, ...), ``MetricModels`` (``fd``,
    ``fad``, ...) and the teacher endpoint's ``EndpointConfig`` (``teacher_model``, ...; none:
    the offline teacher). Returns the ``Evaluation`` (its ``results`` and ``paths``)."""
    from cotvtm.eval.settings import configure
    from cotvtm.eval.run import run_evaluation

    return run_evaluation(configure(testset=str(testset), out=str(out), **settings), echo)
