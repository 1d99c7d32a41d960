"""The ``cotvtm`` command: soundtrack, demo, label, embed, distill, evaluate, build-tiny.

Exit status: 0 when every input succeeded or was already done, 1 when the batch
finished but some inputs failed (see the manifest), 2 for a usage or set-up error.
"""

import argparse
import sys
from pathlib import Path

from cotvtm.config import DECODERS, MODES, WINDOWS, ModelChoice, Resources, SoundtrackConfig
from cotvtm.errors import CotvtmError, guarded
from cotvtm.models import PRESET_NAMES



def _add_soundtrack_options(p: argparse.ArgumentParser) -> None:
    d = SoundtrackConfig()
    m = p.add_argument_group("models (a preset, and per-component hub ids or local dirs)")
    m.add_argument("--preset", default="tiny", choices=PRESET_NAMES)
    for name in ("clip", "t5", "musicgen", "rationale"):
        m.add_argument(f"--{name}", default=None, metavar="REF",
                       help="a local directory, an s3:// prefix or a hub id (owner/name); checked before any work")
    m.add_argument("--prior", default=None, metavar="DIR",
                   help="a prior from `cotvtm distill` (a local directory or an s3:// prefix); default: untrained")
    m.add_argument("--cache-dir", type=Path, default=None, help="where the tiny preset is built")
    m.add_argument("--include-hidden", action="store_true",
                   help="also soundtrack hidden media (names starting with '.'); the job's progress folder never")
    m.add_argument("--endpoint-url", default=None,
                   help="S3-compatible endpoint for s3:// inputs, outputs and models (else AWS_ENDPOINT_URL)")
    g = p.add_argument_group("music")
    g.add_argument("--mode", default=d.mode, choices=MODES)
    g.add_argument("--window-seconds", type=float, default=d.window_s)
    g.add_argument("--windows", default=d.windows, choices=WINDOWS,
                   help="fixed windows of --window-seconds, or shots: window boundaries on the video's shot cuts "
                        "(4 to 14 s per window; a long shot split evenly, short shots merged)")
    g.add_argument("--frames-per-window", type=int, default=d.frames_per_window)
    g.add_argument("--frame-reader", default=d.frame_reader, choices=["pyav", "decord"])
    g.add_argument("--prompt-seconds", type=float, default=d.prompt_s)
    g.add_argument("--crossfade-seconds", type=float, default=d.crossfade_s)
    g.add_argument("--guidance-scale", type=float, default=d.guidance_scale)
    g.add_argument("--top-k", type=int, default=d.top_k)
    g.add_argument("--decoder", default=d.decoder, choices=DECODERS,
                   help="MusicGen decoding: the slot engine (batch-invariant sampling, CUDA graphs on a GPU) "
                        "or transformers' generate (the reference)")
    g.add_argument("--streams-per-video", type=int, default=d.streams_per_video,
                   help="continuous mode: up to this many stretches of a long video are composed side by side, "
                        "joined by a crossfade")
    g.add_argument("--stream-min-seconds", type=float, default=d.stream_min_s,
                   help="the shortest stretch a video is split into (a shorter video is one stream)")
    g.add_argument("--prior-steps", type=int, default=None)
    g.add_argument("--audio", default=d.audio, choices=["replace", "duck"],
                   help="replace the video's audio with the music, or keep it (ducked) under the music")
    g.add_argument("--duck-gain", type=float, default=d.duck_gain, help="gain of the original audio with --audio duck")
    g.add_argument("--loudness", type=float, default=None, metavar="LUFS",
                   help="normalise each output's audio (the music, or the ducked mix) to this integrated loudness: "
                        "-14 for social platforms, -23 for EBU R128 broadcast")
    g.add_argument("--true-peak", type=float, default=d.true_peak, metavar="DBTP",
                   help="the true-peak ceiling with --loudness")
    g.add_argument("--image-seconds", type=float, default=d.image_seconds, help="music length for image inputs")
    g.add_argument("--image-video", action="store_true", help="also write a still-image video for image inputs")
    g.add_argument("--seed", type=int, default=d.seed)
    r = p.add_argument_group("resources")
    r.add_argument("--video-batch", type=int, default=None,
                   help="the decode engine's slots (continuous feeding keeps twice as many videos in flight per "
                        "actor; batched feeding puts this many in a batch) and segments per CLIP/prior batch")
    r.add_argument("--music-feed", default=None, choices=["continuous", "batched"],
                   help="continuous (default): each video's next window enters the decoder as soon as its "
                        "previous one is done; batched: the videos of a batch go window by window in lockstep")
    r.add_argument("--segment-windows", type=int, default=None,
                   help="windows per saved segment (default 6): memory per worker and how far a resume goes back")
    r.add_argument("--wave", type=int, default=None,
                   help="inputs per wave (default 256): the next wave is prepared while this one gets its music")
    r.add_argument("--decode-actors", type=int, default=None, help="CPU actors probing and decoding frames")
    r.add_argument("--model-actors", type=int, default=None, help="actors per model stage (one GPU share each)")
    r.add_argument("--mux-actors", type=int, default=None, help="CPU actors running ffmpeg")
    r.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    r.add_argument("--max-duration", type=float, default=None, metavar="SECONDS",
                   help="refuse a video that declares a longer duration, before planning it (default 86400: 24 h)")


def _config(a: argparse.Namespace) -> tuple[SoundtrackConfig, Resources]:
    models = ModelChoice(preset=a.preset, clip=a.clip, t5=a.t5, musicgen=a.musicgen, rationale=a.rationale,
                         prior=a.prior)
    cfg = SoundtrackConfig(models=models, window_s=a.window_seconds, windows=a.windows,
                           frames_per_window=a.frames_per_window, frame_reader=a.frame_reader, mode=a.mode,
                           prompt_s=a.prompt_seconds,
                           crossfade_s=a.crossfade_seconds, guidance_scale=a.guidance_scale, top_k=a.top_k,
                           decoder=a.decoder, streams_per_video=a.streams_per_video,
                           stream_min_s=a.stream_min_seconds,
                           prior_steps=a.prior_steps, audio=a.audio, duck_gain=a.duck_gain, loudness=a.loudness,
                           true_peak=a.true_peak,
                           image_seconds=a.image_seconds, image_video=a.image_video, seed=a.seed)
    for name in ("segment_windows", "wave"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            raise CotvtmError(f"--{name.replace('_', '-')} must be at least 1")
    res = Resources.detect(video_batch=a.video_batch, music_feed=a.music_feed, segment_windows=a.segment_windows,
                           wave=a.wave,
                           decode_actors=a.decode_actors, model_actors=a.model_actors, mux_actors=a.mux_actors,
                           device=a.device, max_duration_s=a.max_duration)
    return cfg.validate(), res


def _soundtrack(a: argparse.Namespace) -> int:
    from cotvtm.api import soundtrack

    cfg, res = _config(a)
    return soundtrack(a.input, a.output, config=cfg, resources=res, endpoint_url=a.endpoint_url,
                      cache_dir=a.cache_dir, include_hidden=a.include_hidden).exit_code


def _demo(a: argparse.Namespace) -> int:
    from cotvtm.demo import DemoPlan, run_demo

    cfg, res = _config(a)
    plan = DemoPlan(Path(a.workdir), scenes=a.scenes, epochs=a.epochs)
    return run_demo(plan, cfg, res, cache_dir=a.cache_dir).exit_code


def _build_tiny(a: argparse.Namespace) -> int:
    from cotvtm import models

    refs = models.resolve("tiny", cache_dir=a.cache_dir, seed=a.seed)
    for name, ref in vars(refs).items():
        print(f"{name:10s} {ref}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cotvtm", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("soundtrack", help="add music to every video under INPUT, writing to OUTPUT")
    s.add_argument("input", help="a folder or s3://bucket/prefix (searched recursively), or one video file")
    s.add_argument("output", help="the output folder or s3://bucket/prefix")
    _add_soundtrack_options(s)
    s.set_defaults(func=_soundtrack)
    d = sub.add_parser("demo", help="train a tiny prior offline, then soundtrack sample videos with it")
    d.add_argument("--workdir", default="demo_out")
    d.add_argument("--scenes", type=int, default=240, help="generated scenes to label and train on")
    d.add_argument("--epochs", type=int, default=30, help="epochs per distillation stage")
    _add_soundtrack_options(d)
    d.set_defaults(func=_demo)
    b = sub.add_parser("build-tiny", help="build the tiny preset's models and print where they are")
    b.add_argument("--cache-dir", type=Path, default=None)
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_build_tiny)
    from cotvtm.eval.cli import add_subcommand as add_evaluate
    from cotvtm.teacher.cli import add_subcommand as add_label
    from cotvtm.training.cli import add_distill, add_embed

    add_label(sub)
    add_embed(sub)
    add_distill(sub)
    add_evaluate(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
