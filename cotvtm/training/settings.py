"""The embedding job's settings: the models are chosen, found and placed as the soundtrack job's are."""

from dataclasses import dataclass
from pathlib import Path

from cotvtm.options import Checked, at_least, same, setting
from cotvtm.settings import Access, ModelChoice, Resources, SoundtrackConfig
from cotvtm.training.hyperparameters import PAPER_MUSIC_LEN, TINY_MUSIC_LEN


@dataclass(frozen=True)
class Embedding(Checked):
    """Which labels are embedded where, by which encoders, on what."""

    labels: str = setting(positional=True, help="a labels folder written by `cotvtm label` "
                                                "(OUT/labels-<prompt>-<model>)")
    out: str = setting(positional=True, help="shards folder (data/*.parquet + index.json); rewritten")
    preset: str = same(ModelChoice, "preset")
    clip: str | None = same(ModelChoice, "clip")
    t5: str | None = same(ModelChoice, "t5")
    rationale: str | None = same(ModelChoice, "rationale")
    decoder: str | None = same(SoundtrackConfig, "decoder",
                               help="the decoder the prior will drive: E_m in its text encoder's space (MusicGen and "
                                    "Stable Audio Open read T5's, Stable Audio 3 T5Gemma's)", shown_default="T5's")
    cache_dir: Path | None = same(Access, "cache_dir")
    device: str | None = same(Resources, "device", default=None)
    music_len: int | None = setting(None, check=at_least(1), help="E_m tokens",
                                    shown_default=f"{TINY_MUSIC_LEN} for tiny, {PAPER_MUSIC_LEN} otherwise")
    batch_size: int = setting(64, check=at_least(1), help="records per encoder batch")

    def length(self) -> int:
        """E_m's tokens: as given, else the preset's."""
        return self.music_len or (TINY_MUSIC_LEN if self.preset == "tiny" else PAPER_MUSIC_LEN)
