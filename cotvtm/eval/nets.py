"""The evaluation networks, at any size: PANNs CNN14, VGGish, and a small image encoder.

Module and parameter names follow the published checkpoints (PANNs' ``Cnn14``, torchvggish's
``VGGish``), so the official weights load into these classes unchanged; the ``tiny`` preset
builds the same classes with narrow layers and seeded random weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cotvtm.eval.features import LogMel, MelConfig


@dataclass(frozen=True)
class Cnn14Config:
    mel: MelConfig = field(default_factory=MelConfig)
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    embed_dim: int = 2048
    classes: int = 527  # AudioSet

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Cnn14Config:
        return cls(mel=MelConfig(**data["mel"]), widths=tuple(data["widths"]), embed_dim=data["embed_dim"],
                   classes=data["classes"])


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x, pool):
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, pool)


class Cnn14(nn.Module):
    """PANNs CNN14 (Kong et al. 2020): log-mel -> 6 conv blocks -> max+mean over time -> fc1 (embedding)."""

    def __init__(self, cfg: Cnn14Config):
        super().__init__()
        self.cfg = cfg
        self.logmel = LogMel(cfg.mel)
        self.bn0 = nn.BatchNorm2d(cfg.mel.n_mels)
        widths = (1, *cfg.widths)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(cfg.widths[-1], cfg.embed_dim)
        self.fc_audioset = nn.Linear(cfg.embed_dim, cfg.classes)

    def min_samples(self) -> int:
        return self.logmel.min_samples(32)  # five 2x2 poolings need 32 frames

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, samples) -> (embedding (B, embed_dim), logits (B, classes))."""
        x = self.logmel(wave).transpose(1, 3)
        x = self.bn0(x).transpose(1, 3)
        for i in range(1, 6):
            x = getattr(self, f"conv_block{i}")(x, (2, 2))
        x = self.conv_block6(x, (1, 1)).mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)


@dataclass(frozen=True)
class VGGishConfig:
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    fc: tuple[int, int, int] = (4096, 4096, 128)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VGGishConfig:
        return cls(tuple(data["widths"]), tuple(data["fc"]))


class VGGish(nn.Module):
    """VGGish (Hershey et al. 2017) as torchvggish lays it out; 0.96 s log-mel patches -> 128-d.

    The embedding is taken before the last ReLU and without PCA whitening, as
    frechet-audio-distance does by default.
    """

    PATCH = 96  # frames of 10 ms per example
    mel_config = MelConfig.vggish()

    def __init__(self, cfg: VGGishConfig = VGGishConfig()):
        super().__init__()
        self.cfg = cfg
        w1, w2, w3, w4 = cfg.widths
        layers = []
        for cin, cout, pool in ((1, w1, True), (w1, w2, True), (w2, w3, False), (w3, w3, True), (w3, w4, False),
                                (w4, w4, True)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            layers += [nn.MaxPool2d(2, 2)] if pool else []
        self.features = nn.Sequential(*layers)
        f1, f2, f3 = cfg.fc
        self.embeddings = nn.Sequential(nn.Linear(w4 * 4 * 6, f1), nn.ReLU(True), nn.Linear(f1, f2), nn.ReLU(True),
                                        nn.Linear(f2, f3), nn.ReLU(True))
        self.logmel = LogMel(self.mel_config)

    def min_samples(self) -> int:
        return self.logmel.min_samples(self.PATCH)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(1, samples) -> (patches, embed): one row per whole 0.96 s patch."""
        mel = self.logmel(wave)[0, 0]
        count = max(1, mel.shape[0] // self.PATCH)
        x = mel[: count * self.PATCH].reshape(count, 1, self.PATCH, mel.shape[1])
        x = self.features(x).permute(0, 2, 3, 1).reshape(count, -1)  # torchvggish's transposes
        return self.embeddings[:-1](x)


@dataclass(frozen=True)
class VisualConfig:
    widths: tuple[int, ...] = (8, 16, 32)
    dim: int = 32
    size: int = 64

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VisualConfig:
        return cls(tuple(data["widths"]), data["dim"], data["size"])


class VisualNet(nn.Module):
    """A small strided conv net over RGB frames, for the tiny ImageBind-style joint space."""

    def __init__(self, cfg: VisualConfig = VisualConfig()):
        super().__init__()
        self.cfg = cfg
        widths = (3, *cfg.widths)
        self.convs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1)
                                   for i in range(len(cfg.widths)))
        self.proj = nn.Linear(widths[-1], cfg.dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, dim)."""
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        x = F.interpolate(x, size=(self.cfg.size, self.cfg.size), mode="bilinear", align_corners=False)
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.proj(x.mean(dim=(2, 3)))
