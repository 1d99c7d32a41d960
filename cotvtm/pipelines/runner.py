"""Drive one soundtrack run: list inputs, skip finished ones, run the two passes, report."""

import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cotvtm import licences, models, text_space
from cotvtm.about import __version__
from cotvtm.counted import counted, media
from cotvtm.settings import COMMERCIAL_DECODER, Access, Resources, SoundtrackConfig
from cotvtm.errors import CotvtmError, ModelError, SetupError, failed_actor, one_line, printable, root_message
from cotvtm.pipelines import names
from cotvtm.pipelines.context import ModelFacts, RunContext
from cotvtm.pipelines.inputs import survey
from cotvtm.pipelines.job import Outcome, Source, Track, VideoJob
from cotvtm.pipelines.progress import PROGRESS_DIR, Done, VideoProgress, remove_empty, scan, video_id
from cotvtm.prior.bank import read_bank
from cotvtm.provenance import check_signing
from cotvtm.report import write_report
from cotvtm.report.collect import FETCH_THREADS
from cotvtm.stage import records
from cotvtm.storage import Store, open_store
from cotvtm.storage.local import LocalStore
from cotvtm.music.style_file import read_styles, styles_digest
from cotvtm.video.media import is_image
MANIFEST = "manifest.jsonl"
_RECORDING = threading.Lock()  # pass 1 of one wave and pass 2 of another record at once


@dataclass
class Summary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    ignored_reasons: dict[str, int] = field(default_factory=dict)  # reason -> entries (pipelines/inputs.py)
    output: str = ""
    manifest: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    startup: float = 0.0  # seconds of the wall time before work: Ray's start, the stages' actors loading models
    licences: dict = field(default_factory=dict)  # component -> licences.Licence
    conditioning: str = ""  # what conditioned the music (ModelFacts.conditioning)
    unsigned: int = 0  # existing outputs skipped unsigned though signing was asked (``_todo``)

    def line(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.ignored_reasons.items()))
        uncleared = licences.summary(self.licences)
        return (f"cotvtm: {self.ok} succeeded, {self.failed} failed, {self.skipped} skipped, {self.ignored} ignored"
                f"{f' ({reasons})' if reasons else ''}; {self.soundtracked()} soundtracked, {self.throughput()};"
                f" outputs in {self.output}; manifest {self.manifest}"
                f"{f'; conditioning: {self.conditioning}' if self.conditioning else ''}"
                f"{f'; made with models not cleared for commercial use: {uncleared}' if uncleared else ''}"
                f"{f'; {_left_unsigned(self.unsigned)}' if self.unsigned else ''}")

    def soundtracked(self) -> str:
        """The inputs this run gave music, videos and images apart ("2 videos and 1 image")."""
        made = {o.key for o in self.outcomes if o.status == "ok"}
        images = sum(map(is_image, made))
        return media(len(made) - images, images)

    @property
    def ignored(self) -> int:
        """Entries of the input that are not inputs, whatever the reason."""
        return sum(self.ignored_reasons.values())

    def throughput(self) -> str:
        """Media soundtracked in this run, and how fast relative to real time, with and without start-up."""
        seconds = sum(o.duration for o in self.outcomes if o.status == "ok")
        wall = max(time.monotonic() - self.started, 1e-6)
        if not self.startup:
            return f"{seconds / 3600:.3f} h of media in {wall:.0f} s ({seconds / wall:.1f}x real time)"
        work = max(wall - self.startup, 1e-6)
        return (f"{seconds / 3600:.3f} h of media in {wall:.0f} s, {self.startup:.0f} s of it start-up "
                f"({seconds / wall:.1f}x real time; {seconds / work:.1f}x after start-up)")

    @property
    def exit_code(self) -> int:
        """0: every input done or already done; 1: the batch finished but some inputs failed."""
        return 1 if self.failed else 0


def _left_unsigned(count: int) -> str:
    """What the summary and the console say of existing outputs a signed run skipped unsigned."""
    return (f"{counted(count, 'existing output')} left unsigned (made without --sign-cert); "
            f"add --resign to make {'it' if count == 1 else 'them'} again, signed")


def _teacher_endpoint(cfg: SoundtrackConfig):
    """With ``--conditioning teacher``: its endpoint, checked here (a hosted one needs its key)."""
    if cfg.conditioning != "teacher":
        return None
    if not cfg.teacher.teacher_model:
        raise CotvtmError("--conditioning teacher needs --teacher-model (the model the endpoint serves)")
    cfg.teacher.api_key()  # a hosted endpoint without its key fails here, before any input is touched
    return cfg.teacher


def _with_decoder(cfg: SoundtrackConfig, where: Access, echo) -> SoundtrackConfig:
    """``cfg`` with its decoder chosen: ``--decoder``, else MusicGen's engine, or with
    ``--commercial`` Stable Audio 3 (released MusicGen weights are CC-BY-NC-4.0), said once."""
    if cfg.decoder is not None:
        return cfg
    if not where.commercial:
        return replace(cfg, decoder="engine")
    echo(f"decoder  {COMMERCIAL_DECODER} (--commercial without --decoder: MusicGen's released weights are "
         "CC-BY-NC-4.0, Stable Audio 3's allow commercial use)")
    return replace(cfg, decoder=COMMERCIAL_DECODER)


def _loaded(refs: models.ModelRefs, cfg: SoundtrackConfig) -> dict[str, str | None]:
    """The models of ``refs`` the run loads, by component: a teacher run resolves the prior (its
    choice stays in the output names) but loads neither it nor its bank or rationale encoder."""
    used = refs.used()
    if cfg.conditioning == "teacher":
        return {name: ref for name, ref in used.items() if name not in ("prior", "bank", "rationale")}
    return used


def _other_sources(cfg: SoundtrackConfig, where: Access, preset: str) -> dict:
    """What else shapes the outputs, by name -> (reference, licence): with ``--audio voice`` the
    speech detector; with ``--conditioning teacher``, the captioner's model (if it loads one) and
    the teacher, under its declared terms."""
    found = {"speech_detector": ("silero-vad", licences.SPEECH_DETECTOR)} if cfg.audio == "voice" else {}
    if cfg.conditioning != "teacher":
        return found
    from cotvtm.teacher.captioner import captioner_model, captioner_ref

    found["teacher"] = (cfg.teacher.teacher_model, licences.of_teacher(cfg.teacher.teacher_model, where.teacher_terms))
    captioner = captioner_model(captioner_ref(cfg.captioner, preset))
    if captioner:
        found["captioner"] = (captioner, licences.of(captioner))
    return found


def _model_facts(refs: models.ModelRefs, teacher=None) -> ModelFacts:
    """Embedding sizes the prior must match, CLIP's input size, and whether the prior is trained."""
    from transformers import AutoConfig

    short_side = int(AutoConfig.from_pretrained(refs.clip).vision_config.image_size)
    trained = False
    if refs.prior and (Path(refs.prior) / "config.json").exists():
        trained = bool(json.loads((Path(refs.prior) / "config.json").read_text()).get("trained", False))
    dims = models.embedding_dims(refs, rationale=refs.prior != models.RETRIEVAL)
    return ModelFacts(dims, short_side, trained, _conditioning(refs, trained, teacher))


def _conditioning(refs: models.ModelRefs, trained: bool, teacher=None) -> str:
    """What conditions the music, in words for the summary line and the sidecars."""
    if teacher is not None:  # the URL without its credentials: this text goes into every sidecar
        from cotvtm.teacher.settings import shown_url

        return f"the teacher {teacher.teacher_model} at {shown_url(teacher.url)}"
    if refs.prior == models.RETRIEVAL:
        return f"retrieval (the bank {Path(refs.bank).name})"
    return "a distilled prior" if trained else "an untrained prior (random weights)"


def run(where: Access, cfg: SoundtrackConfig, res: Resources | None = None, echo=print) -> Summary:
    """Soundtrack every video under ``where.source`` into ``where.dest`` (folders or s3:// prefixes).

    Never raises for a bad input: each one gets an error row in the manifest. A set-up error
    raises ``CotvtmError`` instead: a model reference that is missing or unreadable, before any
    input is touched or Ray started (``models.resolve``); with ``where.commercial``, a model whose
    licence does not allow commercial use, as early (``licences``); a stage whose model does not load in
    its actors, which stops the run once (``SetupError``). The manifest gets no row for it:
    inputs finished before it keep theirs, inputs not reached get none, and a rerun resumes.
    """
    res = res or Resources.detect()
    cfg = _with_decoder(cfg, where, echo)
    styles = read_styles(cfg.styles, where.endpoint_url) if cfg.styles else {}  # before anything else
    teacher = _teacher_endpoint(cfg)
    choice = asdict(cfg.models)
    preset = choice.pop("preset")
    refs = models.resolve(preset, cache_dir=where.cache_dir, seed=cfg.models.tiny_seed, endpoint_url=where.endpoint_url,
                          decoder=cfg.decoder, **choice)
    check_signing(where.signing())  # credentials that cannot sign stop the run here, not when pass 2 starts
    bank = tuple(read_bank(refs.bank)) if refs.bank else ()  # read once here: actors may be on other nodes
    loaded, others = _loaded(refs, cfg), _other_sources(cfg, where, preset)
    found = {**{name: licences.of(ref) for name, ref in loaded.items()},  # offline: hub ids by the table,
             **{name: lic for name, (_, lic) in others.items()}}  # folders by their model card
    if where.commercial:  # before any config is read from the hub, Ray started or the output touched
        licences.check_commercial(refs, preset, given={k for k, v in choice.items() if v}, found=found,
                                  others={name: ref for name, (ref, _) in others.items()})
    try:  # local models are checked by now: a hub id that is not on the hub, or offline not in its cache
        facts = _model_facts(refs, teacher)
        if "prior" in loaded and refs.prior not in (models.RETRIEVAL, None):  # a distilled prior: for this decoder?
            text_space.check(refs.prior, models.text_encoder_config(refs.t5), cfg.decoder)
    except (OSError, ValueError) as exc:
        hub = ", ".join(f"{models.option_of(name)} {ref}" for name, ref in refs.used().items()
                        if ref and not Path(ref).is_absolute() and models.looks_like_hub_id(ref))
        raise ModelError(f"cannot read the configuration of {hub or 'the models'}: {one_line(exc)}") from None
    digest = cfg.digest(refs.fingerprint(captioner=models.captioner_folder(cfg.captioner)),
                        styles_digest(styles) if cfg.styles else None)
    inputs = survey(where.source, where.endpoint_url, where.include_hidden)
    src, keys = inputs.store, inputs.keys
    out = open_store(where.dest, where.endpoint_url)
    summary = Summary(output=out.uri(), manifest=out.uri(MANIFEST), ignored_reasons=dict(inputs.counts()),
                      licences=found, conditioning=facts.conditioning)
    say = _Say(summary, out, uuid.uuid4().hex[:12], echo)
    say.ignored(inputs.ignored)
    styled = {key: (identity, (styles or {}).get(key, cfg.style)) for key, identity in keys.items()}
    tracks = _existing(*_todo(styled, out, digest, cfg, say), out, say, where)
    if cfg.variants > 1:
        _clear_done(out, digest, set(keys) - {track.key for track in tracks})
    unknown = sorted(set(styles) - set(keys))
    if unknown:
        say.line(f"styles   {len(unknown)} key(s) of --styles match no input: "
                 f"{', '.join(printable(k) for k in unknown[:5])}{', ...' if len(unknown) > 5 else ''}")
    if tracks:
        recorded = {**loaded, **{name: ref for name, (ref, _) in others.items() if name == "captioner"}}
        shared = _sidecar_fields(recorded, cfg, facts, digest, say)
        ctx = RunContext(refs, cfg, res, facts, src, out, digest, shared, signing=where.signing(), bank=bank,
                         teacher=teacher)
        _stream(ctx, tracks, say)
    remove_empty(out, digest)
    try:  # a report that cannot be written must not hide a finished batch
        rows = [o.row() for o in summary.outcomes]
        echo(f"report   {write_report(out, rows, wall_seconds=time.monotonic() - summary.started)}")
    except CotvtmError as exc:
        echo(f"report not written: {exc}")
    echo(summary.line())
    return summary


def _todo(keys: dict[str, tuple[str, str | None]], out: Store, digest: str, cfg: SoundtrackConfig,
          say: "_Say") -> tuple[list[Track], list[tuple[Track, tuple[str, str]]]]:
    """The tracks whose outputs for this config do not exist yet, and those whose outputs do
    (with the outputs' keys: ``_existing`` decides about them). ``keys``: each input's identity
    and style (its line of ``--styles``, else ``--style``). Inputs whose outputs would share a
    name (``names.py``) get an error row each."""
    done = {info.key for info in out.list()}
    clashing = names.clashes(keys, digest, names.ignores_case(out.root if isinstance(out, LocalStore) else None))
    tracks, existing = [], []
    for key, (identity, style) in keys.items():
        if key in clashing:
            say.outcome(Outcome(key, "error", reason=f"its outputs would have the same name as those of "
                                                     f"{', '.join(map(repr, clashing[key]))} on this output store "
                                                     "(names differing only in case, or in a cut long name); "
                                                     "rename one of them"))
            continue
        for variant in range(1, cfg.variants + 1):
            video, sidecar = names.output_keys(key, digest, variant)
            still = names.still_key(video) if is_image(key) and cfg.image_video else None
            track = Track(key, video, sidecar, out_still=still, identity=identity,
                          style=style, variant=variant)
            finished = (video, sidecar) if video in done and sidecar in done else None
            if finished is None and variant == 1:  # only the first variant existed before variants
                finished = _earlier(key, digest, out, done, say)
            if finished:
                existing.append((track, finished))
            else:
                tracks.append(track)
    return tracks, existing


def _existing(tracks: list[Track], existing: list[tuple[Track, tuple[str, str]]], out: Store, say: "_Say",
              where: Access) -> list[Track]:
    """``tracks``, and the inputs whose outputs exist recorded as skipped. Signing is not part of the
    config: with signing asked, existing outputs made unsigned are said and counted, or with
    ``--resign`` made again (and so signed): the tracks to make, those added."""
    resign = where.resign
    unsigned = _unsigned(out, [sidecar for _, (_, sidecar) in existing]) if where.sign_cert else set()
    for track, (video, sidecar) in existing:
        if resign and sidecar in unsigned:
            tracks.append(track)
            continue
        say.outcome(Outcome(track.key, "skipped", reason="output exists for this config", output=out.uri(video),
                            sidecar=out.uri(sidecar), variant=track.variant))
    say.todo(tracks, 0 if resign else len(unsigned))
    return tracks


def _unsigned(out: Store, sidecars: list[str]) -> set[str]:
    """The ``sidecars`` of existing outputs that record no C2PA manifest: their outputs were made
    unsigned (or the sidecar cannot be read). One read each, ``FETCH_THREADS`` at once: a bucket
    answers slowly per object."""
    def unsigned(key: str) -> bool:
        provenance = _sidecar_field(out, key, "provenance")
        return not (isinstance(provenance, dict) and isinstance(provenance.get("c2pa"), dict))

    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        return {key for key, no in zip(sidecars, pool.map(unsigned, sidecars)) if no}


def _sidecar_field(out: Store, key: str, field: str):
    """One field of the existing sidecar at ``key``; None where it cannot be read or is not a
    sidecar (damaged, not JSON, too deeply nested)."""
    try:
        return json.loads(out.get_bytes(key)).get(field)
    except (CotvtmError, ValueError, AttributeError, RecursionError):
        return None


def _earlier(key: str, digest: str, out: Store, done: set[str], say: "_Say") -> tuple[str, str] | None:
    """The outputs of ``key`` for this config under the names of an earlier version, when they
    exist and their sidecar says they were made from this input."""
    video, sidecar = names.legacy_output_keys(key, digest)
    if video not in done or sidecar not in done:
        return None
    if _sidecar_field(out, sidecar, "input") == key:
        return video, sidecar
    say.line(f"redo     {printable(key)}: the earlier output {printable(video)} was not made from it (an earlier "
             "naming rule gave inputs differing only in extension one name); it gets its own output now")
    return None


def _sidecar_fields(loaded: dict, cfg: SoundtrackConfig, facts: ModelFacts, digest: str, say: "_Say") -> dict:
    """What every sidecar of this run says about the run itself: the models it loaded, and their
    licences (found once, on the summary)."""
    trained, found = facts.prior_trained, say.summary.licences
    return {"cotvtm": __version__, "run_id": say.run_id, "config_digest": digest, "config": cfg.recorded(),
            "models": loaded,
            "licences": {name: lic.record() for name, lic in found.items()}, "prior_trained": trained,
            "conditioning": facts.conditioning,  # retrieval, a distilled prior or an untrained one
            "note": None if trained or loaded.get("prior") == models.RETRIEVAL or cfg.conditioning == "teacher" else
            "the prior is untrained (random weights): the music does not yet reflect the video; train one with "
            "the distillation job, or use the retrieval prior (the default)"}


def _stream(ctx: RunContext, tracks: list[Track], say: "_Say") -> None:
    """Pass 1 saves the inputs' conditioning, pass 2 composes and muxes those that have it.

    Inputs go in waves of ``res.wave``: pass 1 of the next wave runs while pass 2 of this one
    does, so the music stage does not wait for decoding, and outputs appear from the first wave on.
    """
    from cotvtm.pipelines.ticker import PROGRESS_EVERY_S, Ticker
    from cotvtm.raycluster import init_ray

    began = time.monotonic()
    say.line(f"ray      {init_ray()} in {time.monotonic() - began:.1f} s")
    before = len(say.summary.outcomes)  # the inputs skipped or refused before the passes
    ticker = Ticker(len(tracks), lambda: len(say.summary.outcomes) - before, say.line,
                    every=None if sys.stdout.isatty() else PROGRESS_EVERY_S)  # a terminal has Ray Data's bars
    ticker.ray_started(time.monotonic() - began)
    say.ticker = ticker
    with ticker:
        _passes(ctx, tracks, say)
    say.summary.startup = ticker.startup


def _passes(ctx: RunContext, tracks: list[Track], say: "_Say") -> None:
    """The two passes over the waves of ``tracks``, counted by ``say.ticker``."""
    saved = scan(ctx.progress, ctx.digest)
    waves = _waves(tracks, ctx.res.wave)
    stop = threading.Event()  # set when the driver gives up: the wave being prepared stops too
    with ThreadPoolExecutor(1) as ahead:
        try:
            say.began(1)
            pending = ahead.submit(_condition, ctx, waves[0], saved, say, stop)
            for number in range(len(waves)):
                ready = pending.result()
                if number + 1 < len(waves):
                    pending = ahead.submit(_condition, ctx, waves[number + 1], saved, say, stop)
                say.began(2)
                _compose(ctx, ready, say)
        finally:
            stop.set()


def _waves(tracks: list[Track], size: int) -> list[list[Track]]:
    """``size`` inputs a wave, every variant of an input in the same wave as the others."""
    keys = list(dict.fromkeys(track.key for track in tracks))
    wave_of = {key: index // size for index, key in enumerate(keys)}
    waves: list[list[Track]] = [[] for _ in range(-(-len(keys) // size))]
    for track in tracks:
        waves[wave_of[track.key]].append(track)
    return waves


class _Say:
    """Lines and manifest rows of one run (from both passes, two threads), one at a time.

    Lines show names with their control characters escaped (``errors.printable``): a name is
    data, and must not forge a line or drive the terminal. Rows keep the real names.
    """

    STAGE_MODELS = {"Embed": "clip", "Prior": "prior", "Music": "musicgen"}  # the model each stage's actors load

    def __init__(self, summary: Summary, out: Store, run_id: str, echo):
        self.summary, self.out, self.run_id, self.echo = summary, out, run_id, echo
        self.stills: dict[tuple[str, int], str] = {}  # (key, variant) -> an image's still video (--image-video)
        self.ticker = None  # while the passes run: the ticker that counts their records (``ticker.py``)

    def began(self, number: int) -> None:
        if self.ticker is not None:
            self.ticker.pass_began(number)

    def saw(self, record, number: int) -> None:
        """A record came out of pass ``number``: counted (and the first one's wait timed) by the ticker."""
        if self.ticker is not None:
            self.ticker.saw(record, number)

    def todo(self, tracks: list[Track], unsigned: int) -> None:
        """Note the still videos the tracks make, so that an input's line names every output it has,
        and say how many existing outputs stay unsigned though signing was asked."""
        self.stills = {(t.key, t.variant): self.out.uri(t.out_still) for t in tracks if t.out_still}
        self.summary.unsigned = unsigned
        if unsigned:
            self.line(f"signing  {_left_unsigned(unsigned)}")

    def line(self, text: str) -> None:
        with _RECORDING:
            self.echo(text)

    def prepared(self, key: str, index: int, count: int) -> None:
        """Pass 1 saved a segment's conditioning."""
        self.line(f"prepared {printable(key)}{f': segment {index + 1}/{count}' if count > 1 else ''}")

    def outcome(self, outcome: Outcome) -> None:
        """Append the manifest row as soon as an input is finished, and say so (from either pass)."""
        summary, key = self.summary, printable(outcome.key)
        with _RECORDING:
            summary.outcomes.append(outcome)
            if outcome.status == "ok":
                summary.ok += 1
                made = [outcome.output, self.stills.get((outcome.key, outcome.variant))]
                self.echo(f"ok       {key} -> {', '.join(printable(uri) for uri in made if uri)}")
            elif outcome.status == "skipped":
                summary.skipped += 1
                self.echo(f"skipped  {key} ({printable(outcome.reason)})")
            else:
                summary.failed += 1
                self.echo(f"error    {key}: {printable(outcome.reason)}")
            row = {"run_id": self.run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   **outcome.row()}
            self.out.append_line(MANIFEST, json.dumps(row))

    def ignored(self, entries: list[tuple[str, str]]) -> None:
        """One manifest row per entry of the input that is not an input, with why."""
        rows = [json.dumps({"run_id": self.run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            **Outcome(entry, "ignored", reason=reason).row()}) for entry, reason in entries]
        if rows:  # one append: on S3 each append is an object
            self.out.append_line(MANIFEST, "\n".join(rows))

    def stop_if_setup_failed(self, stage: str, exc: Exception, refs: models.ModelRefs) -> None:
        """Raise ``SetupError`` when ``exc`` says a stage's actors died in their constructor (a
        model that does not load): no input is to blame, so the run stops here, once, and the
        inputs it did not reach get no row."""
        actor = failed_actor(exc)
        if actor is None:
            return
        option = self.STAGE_MODELS.get(actor)
        if option == "musicgen" and refs.musicgen is None:
            option = "stable_audio" if refs.stable_audio else "stable_audio_3"
        model = f" with {models.option_of(option)} {getattr(refs, option) or '(untrained)'}" if option else ""
        which = f"the {actor} stage" if actor else "a stage"
        raise SetupError(f"{stage} stopped: {which} could not start{model}: {root_message(exc)}; "
                         "fix it and run again (finished inputs are kept)") from None

    def lost(self, jobs: list[VideoJob], stage: str, exc: Exception) -> None:
        """A pass that broke down (not one input's fault): its unfinished inputs get error rows,
        with the original error in one line (Ray's wrapping, traceback and colours removed)."""
        recorded = {(o.key, o.variant) for o in self.summary.outcomes}
        reason = f"{stage}: the pass failed ({root_message(exc)}); run again to resume"
        for job in jobs:
            if (job.key, job.variant) not in recorded:
                self.outcome(Outcome(job.key, "error", reason=reason, variant=job.variant))


def _condition(ctx: RunContext, wave: list[Track], saved: dict[str, Done], say: _Say,
               stop: threading.Event) -> list[VideoJob]:
    """Pass 1 over one wave; records the inputs that failed, and returns the others ready for
    pass 2, the longest first: the decoder ends the wave on short videos, not on one long one."""
    from cotvtm.pipelines.condition import conditioning

    sources, jobs, counts = _sources(ctx, wave, saved)
    failed = set()
    if sources:
        say.line(f"pass 1/2: music conditioning for {counted(len(sources), 'input')} "
                 f"({sum(s.plan is not None for s in sources)} resumed)")
        try:
            for batch in conditioning(ctx, sources).iter_batches(batch_size=1):
                if stop.is_set():
                    return []
                for segment in records(batch):  # a batch may also be empty
                    say.saw(segment, 1)
                    if segment.error is None:
                        counts[segment.key] = segment.count
                        say.prepared(segment.key, segment.index, segment.count)
                    elif segment.key not in failed:
                        failed.add(segment.key)
                        for job in jobs:  # every variant of the input
                            if job.key == segment.key:
                                say.outcome(Outcome.of_failed(segment, job.variant))
        except Exception as exc:  # e.g. a stage's actors lost more often than Ray retries
            say.stop_if_setup_failed("conditioning", exc, ctx.refs)
            failed = {source.key for source in sources}
            say.lost([job for job in jobs if job.key in failed], "conditioning", exc)
    ready = [job for job in jobs if job.key not in failed]
    return sorted(ready, key=lambda job: -counts.get(job.key, 0))


def _compose(ctx: RunContext, ready: list[VideoJob], say: _Say) -> None:
    """Pass 2 over one wave's inputs that have their conditioning."""
    from cotvtm.pipelines.finish import music_and_mux

    if not ready:
        return
    tracks = f" ({len(ready)} tracks)" if ctx.cfg.variants > 1 else ""
    say.line(f"pass 2/2: music and mux for {counted(len({job.key for job in ready}), 'input')}{tracks}")
    outcomes = []
    try:
        for batch in music_and_mux(ctx, ready).iter_batches(batch_size=1):
            for record in records(batch):
                say.saw(record, 2)
                outcomes.append(record if isinstance(record, Outcome) else Outcome.of_failed(record))
                say.outcome(outcomes[-1])
    except Exception as exc:
        say.stop_if_setup_failed("music", exc, ctx.refs)
        say.lost(ready, "music", exc)
    if ctx.cfg.variants > 1:
        _clear_finished(ctx, ready, outcomes)


def _clear_done(out: Store, digest: str, done: set[str]) -> None:
    """Remove saved work left by inputs whose every variant is made (a run stopped between its
    last mux and the clearing); one listing of the progress folder."""
    root = out.child(PROGRESS_DIR)
    left = scan(root, digest) if done else {}
    for key in done:
        if video_id(key) in left:
            VideoProgress(root, digest, key).discard()


def _clear_finished(ctx: RunContext, ready: list[VideoJob], outcomes: list[Outcome]) -> None:
    """Remove the saved work of the inputs whose every variant this pass made: Mux leaves it,
    since the variants share the plan and the conditioning."""
    made = {(o.key, o.variant) for o in outcomes if o.status == "ok"}
    unmade = {job.key for job in ready if (job.key, job.variant) not in made}
    for key in {job.key for job in ready} - unmade:
        ctx.video(key).discard()


def _sources(ctx: RunContext, wave: list[Track],
             saved: dict[str, Done]) -> tuple[list[Source], list[VideoJob], dict[str, int]]:
    """The wave's records, each made once from the one listing of saved progress: a ``Source``
    for every input whose conditioning is not all saved (with the saved plan and segments of a
    partly done one), the ``VideoJob`` of every track (with the segments whose music is saved),
    and the segment count of those whose plan was read.

    Saved work of an input whose content has changed since (another ETag, version, size or
    modification time), or whose plan is unreadable, is thrown away.
    """
    sources, jobs, counts, seen = [], [], {}, {}
    for track in wave:
        if track.key not in seen:  # one Source per input, whatever its variants
            seen[track.key] = _source(ctx, track, saved, sources, counts)
        jobs.append(VideoJob.of(track, seen[track.key].composed_of(track.variant)))
    return sources, jobs, counts


def _source(ctx: RunContext, job: Track, saved: dict[str, Done], sources: list, counts: dict) -> Done:
    """Add the input's ``Source`` when its conditioning is not all saved; what is saved of it."""
    done = saved.get(video_id(job.key)) or Done()
    plan = _saved_plan(ctx, job, done)
    if plan is None:
        if done.plan:
            ctx.video(job.key).clear()
            done = Done()
        sources.append(Source(job.key, job.identity))
    else:
        counts[job.key] = len(plan.segments)
        if len(done.conditioned) < len(plan.segments):
            sources.append(Source(job.key, job.identity, plan, done.conditioned))
    return done


def _saved_plan(ctx: RunContext, job: Track, done: Done):
    """The input's saved plan when there is one, readable, of the same content."""
    if not done.plan:
        return None
    try:
        plan = ctx.video(job.key).load_plan()
    except Exception:  # an unreadable plan is made again
        return None
    return plan if plan.identity == job.identity else None
