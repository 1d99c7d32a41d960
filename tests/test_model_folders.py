"""Model folders: only regular files are read (checked with stat before anything is opened), and
the fingerprint that names the outputs covers every file of the folder by content."""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm import model_folders, models, tiny
from cotvtm.errors import ModelRefError
from cotvtm.settings import SoundtrackConfig
from cotvtm.storage import open_store
from cotvtm.video.samples import make_video

CLI_BOUND_S = 60  # the refusal is a stat before Ray: seconds; a hang would run into this


@pytest.fixture(scope="module")
def stable_audio_dir(model_cache, tiny_refs) -> Path:
    return tiny.build_stable_audio(model_cache, Path(tiny_refs.t5))


def _copy(src, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _musicgen_with_bin(tiny_refs, dst: Path) -> Path:
    """The tiny MusicGen with its weights as pytorch_model.bin (the older format), not safetensors."""
    from safetensors.torch import load_file

    folder = _copy(tiny_refs.musicgen, dst)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def _output_digest(refs: models.ModelRefs) -> str:
    return SoundtrackConfig().digest(refs.fingerprint())


def test_a_fifo_named_config_json_is_refused_by_name_before_ray(stable_audio_dir, model_cache, tmp_path):
    """The review's repro: it hung the driver, which opened the FIFO to read it."""
    folder = _copy(stable_audio_dir, tmp_path / "sa")
    (folder / "transformer" / "config.json").unlink()
    os.mkfifo(folder / "transformer" / "config.json")
    inputs = tmp_path / "in"
    inputs.mkdir()
    make_video(inputs / "a.mp4", duration=1, size="64x48", fps=4)
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(inputs), str(out), "--cache-dir",
                           str(model_cache), "--decoder", "stable-audio", "--stable-audio", str(folder)],
                          capture_output=True, text=True, timeout=CLI_BOUND_S)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    assert proc.stderr.splitlines() == [f"cotvtm: error: --stable-audio {folder}: transformer/config.json is not a "
                                        "regular file (a FIFO)"], said
    assert "Traceback" not in said and "started a local ray" not in said.lower()  # Ray never started and not out.exists()
    assert time.monotonic() - started < CLI_BOUND_S / 2  # refused, not timed out


def test_a_fifo_at_the_top_is_refused_before_its_json_is_read(stable_audio_dir, model_cache, tmp_path):
    folder = _copy(stable_audio_dir, tmp_path / "sa")
    (folder / "model_index.json").unlink()
    os.mkfifo(folder / "model_index.json")
    with pytest.raises(ModelRefError, match=r"^--stable-audio .*: model_index\.json is not a regular file \(a FIFO\)$"):
        models.resolve("tiny", cache_dir=model_cache, decoder="stable-audio", stable_audio=str(folder))


def test_a_link_to_dev_zero_is_refused_by_name_not_read(tiny_refs, model_cache, tmp_path):
    """The review's repro: the fingerprint read it whole (MemoryError)."""
    folder = _copy(tiny_refs.musicgen, tmp_path / "mg")
    (folder / "added_tokens.json").symlink_to("/dev/zero")
    reason = "added_tokens.json is not a regular file (a link to /dev/zero, a character device)"
    with pytest.raises(ModelRefError, match=f"^{re.escape(f'--musicgen {folder}: {reason}')}$"):
        models.resolve("tiny", cache_dir=model_cache, musicgen=str(folder))
    unchecked = models.ModelRefs(**{**vars(tiny_refs), "musicgen": str(folder)})  # not through resolve
    with pytest.raises(ModelRefError, match="added_tokens.json is not a regular file"):
        unchecked.fingerprint()


def test_a_socket_and_a_broken_link_are_refused_by_name(tiny_refs, model_cache, tmp_path):
    import socket

    folder = _copy(tiny_refs.clip, tmp_path / "clip")
    (folder / "vocab.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(ModelRefError, match=r"vocab\.json is a broken link \(to .*gone\.json\)$"):
        models.resolve("tiny", cache_dir=model_cache, clip=str(folder))
    (folder / "vocab.json").unlink()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "sock"))
        with pytest.raises(ModelRefError, match=r"sock is not a regular file \(a socket\)$"):
            models.resolve("tiny", cache_dir=model_cache, clip=str(folder))


def test_links_to_regular_files_elsewhere_count_as_their_content(tiny_refs, model_cache, tmp_path):
    """A hub cache snapshot is links into ../../blobs: accepted, and named like a copy."""
    copy = _copy(tiny_refs.t5, tmp_path / "copy" / "t5")
    linked = tmp_path / "snapshot" / "t5"
    linked.mkdir(parents=True)
    for item in copy.iterdir():
        (linked / item.name).symlink_to(item)
    refs = models.resolve("tiny", cache_dir=model_cache, t5=str(linked))
    assert refs.t5 == str(linked)
    assert refs.fingerprint() == models.resolve("tiny", cache_dir=model_cache, t5=str(copy)).fingerprint()
    (linked / "loop").symlink_to(linked)
    with pytest.raises(ModelRefError, match=r"loop is a link back to a folder above it \(a loop\)$"):
        models.resolve("tiny", cache_dir=model_cache, t5=str(linked))


def test_replacing_a_bin_weight_changes_the_fingerprint_and_the_output_names(tiny_refs, model_cache, tmp_path):
    """The review's repro: .bin weights were not hashed, so swapped weights kept every name and a
    rerun skipped everything as done. Same size, same modification time: only the content differs."""
    folder = _musicgen_with_bin(tiny_refs, tmp_path / "mg")
    refs = models.resolve("tiny", cache_dir=model_cache, musicgen=str(folder))
    before, named = refs.fingerprint(), _output_digest(refs)
    assert refs.fingerprint() == before  # untouched: the same name, run after run
    weights = folder / "pytorch_model.bin"
    state = torch.load(weights)
    when = weights.stat()
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, weights)
    os.utime(weights, ns=(when.st_atime_ns, when.st_mtime_ns))
    assert weights.stat().st_size == when.st_size
    assert refs.fingerprint() != before and _output_digest(refs) != named


@pytest.mark.parametrize("name, changes", [
    ("tokenizer.json", True), ("spiece.model", True), ("text_encoder/extra.pt", True),
    ("README.md", False), (".git/index", False), (".cache/huggingface/download/x.metadata", False),
])
def test_every_file_but_the_model_card_and_vcs_records_counts(tiny_refs, tmp_path, name, changes):
    folder = _copy(tiny_refs.t5, tmp_path / "t5")
    for extra in ("spiece.model", "text_encoder/extra.pt", "README.md", ".git/index",
                  ".cache/huggingface/download/x.metadata"):
        (folder / extra).parent.mkdir(parents=True, exist_ok=True)
        (folder / extra).write_bytes(b"first")
    refs = models.ModelRefs(**{**vars(tiny_refs), "t5": str(folder)})
    before = refs.fingerprint()
    (folder / name).write_bytes((folder / name).read_bytes() + b" second")
    assert (refs.fingerprint() != before) is changes


def test_a_safetensors_header_counts_by_meaning_not_by_byte_order(tiny_refs, tmp_path):
    """Two saves list the header's metadata in either order (the same model); a header that reads
    the same bytes as another dtype is another model."""
    folder = _copy(Path(tiny_refs.clip).parent / "prior", tmp_path / "prior")  # beside the tiny models
    weights = folder / "model.safetensors"
    raw = weights.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    header, tensors = json.loads(raw[8:8 + length]), raw[8 + length:]
    refs = models.ModelRefs(**{**vars(tiny_refs), "prior": str(folder)})
    before = refs.fingerprint()

    def rewrite(new: dict) -> str:
        text = json.dumps(new).encode()
        weights.write_bytes(struct.pack("<Q", len(text)) + text + tensors)
        return refs.fingerprint()

    meta = header.pop("__metadata__")
    assert rewrite({"__metadata__": dict(reversed(meta.items())), **header}) == before
    name = next(k for k, v in header.items() if v["dtype"] == "F32")
    assert rewrite({"__metadata__": meta, **header, name: {**header[name], "dtype": "I32"}}) != before


def test_a_folder_with_too_many_entries_is_not_walked_to_the_end(tiny_refs, model_cache, tmp_path):
    folder = _copy(tiny_refs.clip, tmp_path / "clip")
    crowd = folder / "crowd"
    crowd.mkdir()
    for i in range(model_folders.MAX_ENTRIES):
        (crowd / str(i)).touch()
    with pytest.raises(ModelRefError, match=f"more than {model_folders.MAX_ENTRIES} entries: not a model folder"):
        models.resolve("tiny", cache_dir=model_cache, clip=str(folder))


def test_a_fetched_folder_is_checked_in_the_cache_too(s3_env, tiny_refs, model_cache):
    """An s3:// prefix becomes a cache folder; what is later put in that folder is refused too."""
    bucket = s3_env.make_bucket()
    prior = Path(tiny_refs.clip).parent / "prior"
    store = open_store(f"s3://{bucket}/prior/")
    for item in prior.iterdir():
        store.put_bytes(item.name, item.read_bytes())
    local = Path(models.resolve("tiny", cache_dir=model_cache, prior=f"s3://{bucket}/prior/").prior)
    assert local.is_relative_to(model_cache) and (local / "model.safetensors").is_file()
    (local / "config.json").unlink()
    os.mkfifo(local / "config.json")
    with pytest.raises(ModelRefError, match=f"^--prior s3://{bucket}/prior/: config.json is not a regular file "
                                            r"\(a FIFO\) \(fetched to "):
        models.resolve("tiny", cache_dir=model_cache, prior=f"s3://{bucket}/prior/")


def test_a_local_captioner_is_checked_and_counts_by_content(tiny_refs, model_cache, tmp_path):
    """``--captioner blip:DIR`` is loaded by the actors, so the driver checks its folder first, and
    its weights name the outputs; a hub captioner or retrieval leaves the fingerprint as it was."""
    folder = _copy(tiny.build_captioner(model_cache), tmp_path / "blip")
    assert models.captioner_folder("retrieval") is None and models.captioner_folder("blip:owner/blip") is None
    assert tiny_refs.fingerprint(captioner=None) == tiny_refs.fingerprint()
    local = models.captioner_folder(f"blip:{folder}")
    before = tiny_refs.fingerprint(captioner=local)
    assert before != tiny_refs.fingerprint()
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\1")
    assert tiny_refs.fingerprint(captioner=local) != before
    os.mkfifo(folder / "preprocessor_config.json.tmp")
    with pytest.raises(ModelRefError, match=r"^--captioner .*: preprocessor_config\.json\.tmp is not a regular file "
                                            r"\(a FIFO\)$"):
        models.captioner_folder(f"blip:{folder}")


def test_a_hostile_safetensors_header_is_hashed_not_parsed_whole(tiny_refs, tmp_path):
    """A header claiming more bytes than the file, or nested past the parser's depth, cannot break
    the fingerprint: it counts as raw bytes, and the loader is the one to refuse it."""
    folder = _copy(tiny_refs.clip, tmp_path / "clip")
    refs = models.ModelRefs(**{**vars(tiny_refs), "clip": str(folder)})
    fingerprints = set()
    for header in (b"[" * 200_000 + b"]" * 200_000, b"{}"):
        for length in (len(header), 1 << 62):
            (folder / "model.safetensors").write_bytes(struct.pack("<Q", length) + header)
            fingerprints.add(refs.fingerprint())
    assert len(fingerprints) == 4
