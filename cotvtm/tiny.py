"""The `tiny` preset: real architectures at toy size, random weights, local tokenizers.

Each builder writes a Hugging Face-format directory (config, safetensors, tokenizer or
processor) that is then loaded through the very same ``from_pretrained`` path a real
checkpoint uses. Nothing is downloaded; everything is deterministic given the seed.
"""

import os
import shutil
import tempfile
from pathlib import Path

import torch

from cotvtm import tiny_vocab

TINY_VERSION = 5  # bump when a builder changes, so stale caches are rebuilt
CLIP_DIM = 32
T5_DIM = 32
RATIONALE_DIM = 32
IMAGE_SIZE = 32
SAMPLE_RATE = 8000
HOP = (8, 5, 5, 4)  # 800 samples per frame -> 10 codec frames per second
CODEBOOK_SIZE = 64
NUM_CODEBOOKS = 4
COMPONENTS = ("clip", "t5", "musicgen", "rationale", "prior")


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    vocab, merges = tiny_vocab.clip_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges)


def _t5_tokenizer():
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=tiny_vocab.t5_vocab(), extra_ids=0)


def build_clip(out: Path, seed: int) -> None:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    tok = _clip_tokenizer()
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    text = dict(small, vocab_size=len(tok), max_position_embeddings=77,
                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = CLIPConfig(text_config=text, vision_config=dict(small, image_size=IMAGE_SIZE, patch_size=8),
                        projection_dim=CLIP_DIM)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(out)
    images = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)


def _t5_config(vocab_size: int):
    from transformers import T5Config

    return T5Config(vocab_size=vocab_size, d_model=T5_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)


def build_musicgen_and_t5(musicgen_out: Path, t5_out: Path, seed: int) -> None:
    """MusicGen with its Encodec, plus its T5 text encoder saved on its own.

    The standalone T5 directory holds exactly MusicGen's text-encoder weights, so E_m
    computed by the encoder job lives in MusicGen's own conditioning space.
    """
    from transformers import (EncodecConfig, EncodecFeatureExtractor, GenerationConfig, MusicgenConfig,
                              MusicgenDecoderConfig, MusicgenForConditionalGeneration, MusicgenProcessor)

    tok = _t5_tokenizer()
    frame_rate = SAMPLE_RATE // int(torch.tensor(HOP).prod())
    # transformers 5: num_quantizers = 1000 * bandwidth // (frame_rate * log2(codebook_size))
    bandwidth = NUM_CODEBOOKS * frame_rate * (CODEBOOK_SIZE.bit_length() - 1) / 1000
    audio = EncodecConfig(sampling_rate=SAMPLE_RATE, upsampling_ratios=list(HOP), num_filters=4, hidden_size=16,
                          codebook_size=CODEBOOK_SIZE, target_bandwidths=[bandwidth], num_lstm_layers=1)
    assert audio.num_quantizers == NUM_CODEBOOKS, audio.num_quantizers
    decoder = MusicgenDecoderConfig(vocab_size=CODEBOOK_SIZE, num_codebooks=NUM_CODEBOOKS, hidden_size=32,
                                    ffn_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                    pad_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE,
                                    initializer_factor=0.2)  # wide enough that conditioning moves the logits
    config = MusicgenConfig(text_encoder=_t5_config(len(tok)), audio_encoder=audio, decoder=decoder)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config)
    _randomise_codebooks(model.audio_encoder)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=CODEBOOK_SIZE, pad_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE,
        do_sample=True, guidance_scale=3.0, top_k=250, max_length=1500)
    model.save_pretrained(musicgen_out)
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0)
    MusicgenProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(musicgen_out)
    model.text_encoder.save_pretrained(t5_out)
    tok.save_pretrained(t5_out)


def _randomise_codebooks(encodec) -> None:
    """Encodec initialises its codebooks to zeros (they are learned by k-means), which
    would decode every code to the same sound; random codebooks make codes audible."""
    with torch.no_grad():
        for layer in encodec.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)


def build_rationale(out: Path, seed: int) -> None:
    """A small Llama-style encoder standing in for LLM2Vec's Llama-3-8B."""
    from transformers import LlamaConfig, LlamaModel, LlamaTokenizer

    vocab, merges = tiny_vocab.llama_vocab()
    tok = LlamaTokenizer(vocab=vocab, merges=merges)
    tok.pad_token = tok.eos_token
    config = LlamaConfig(vocab_size=len(tok), hidden_size=RATIONALE_DIM, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    LlamaModel(config).save_pretrained(out)
    tok.save_pretrained(out)


def build_prior(out: Path, seed: int) -> None:
    """An untrained two-stage prior with the tiny encoders' dimensions."""
    from cotvtm.prior import PriorConfig, TwoStagePrior

    torch.manual_seed(seed)
    TwoStagePrior(PriorConfig.tiny()).save_pretrained(out)


def build_once(root: Path, build) -> Path:
    """Run ``build(staging)`` and move the result to ``root`` atomically, unless it is there.

    A model cache is shared by processes (Ray actors, test workers): building in a private
    staging folder and renaming means nobody ever sees a half-written model.
    """
    root = Path(root)
    if (root / "COMPLETE").exists():
        return root
    from cotvtm.quiet import quiet_transformers

    quiet_transformers()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        build(staging)
        (staging / "COMPLETE").write_text("ok\n")
        try:
            os.rename(staging, root)
        except OSError:  # another process finished first; theirs is identical
            if not (root / "COMPLETE").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def build_captioner(root: Path, seed: int = 0) -> Path:
    """BLIP (image captioning) at toy size, random weights, a BERT tokenizer over the built-in
    word list: the tiny preset's offline captioner (``teacher/captioner.py``)."""
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil,
                              BlipProcessor)

    def build(staging: Path) -> None:
        words = sorted({w for w in tiny_vocab.words() if w.isalpha()})
        staging.mkdir(parents=True, exist_ok=True)
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]  # [DEC]: BLIP's decoder start
        (staging / "vocab.txt").write_text("\n".join(special + words) + "\n")
        tok = BertTokenizer(str(staging / "vocab.txt"), bos_token="[DEC]")
        small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        text = dict(small, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                    eos_token_id=tok.sep_token_id, sep_token_id=tok.sep_token_id, max_position_embeddings=64)
        config = BlipConfig(text_config=text, vision_config=dict(small, image_size=IMAGE_SIZE, patch_size=8),
                            projection_dim=CLIP_DIM)
        torch.manual_seed(seed)
        BlipForConditionalGeneration(config).save_pretrained(staging)
        images = BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
        BlipProcessor(image_processor=images, tokenizer=tok).save_pretrained(staging)

    return build_once(Path(root) / f"tiny-captioner-v{TINY_VERSION}-seed{seed}", build)


# Stable Audio Open's architecture at toy size: an Oobleck autoencoder of 64 samples per latent
# at the tiny MusicGen's 8 kHz, and a diffusion transformer over 2048 latents (16.4 s, room for
# a 14 s shot window and its crossfade).
STABLE_AUDIO_HOP = (4, 4, 4)
STABLE_AUDIO_LATENTS = 2048


def build_stable_audio(root: Path, t5: Path, seed: int = 0) -> Path:
    """Stable Audio Open's pipeline (diffusers' own classes) at toy size, random weights, its text
    encoder and tokenizer the tiny T5's: the tiny preset's ``--decoder stable-audio``. Built on
    first use only, into ``<root>/tiny-stable-audio-v<N>-seed<S>/stable_audio``, because no
    other decoder needs it."""

    def build(staging: Path) -> None:
        from diffusers import (AutoencoderOobleck, CosineDPMSolverMultistepScheduler, StableAudioDiTModel,
                               StableAudioPipeline, StableAudioProjectionModel)
        from transformers import T5EncoderModel, T5Tokenizer

        from cotvtm.quiet import quiet_diffusers

        quiet_diffusers()
        torch.manual_seed(seed)
        latent = 8
        vae = AutoencoderOobleck(encoder_hidden_size=2 * latent, downsampling_ratios=list(STABLE_AUDIO_HOP),
                                 channel_multiples=[1, 2, 2], decoder_channels=8, decoder_input_channels=latent,
                                 audio_channels=2, sampling_rate=SAMPLE_RATE)
        transformer = StableAudioDiTModel(sample_size=STABLE_AUDIO_LATENTS, in_channels=latent, num_layers=2,
                                          attention_head_dim=8, num_attention_heads=4,
                                          num_key_value_attention_heads=2, out_channels=latent,
                                          cross_attention_dim=T5_DIM, time_proj_dim=32,
                                          global_states_input_dim=2 * T5_DIM, cross_attention_input_dim=T5_DIM)
        projection = StableAudioProjectionModel(text_encoder_dim=T5_DIM, conditioning_dim=T5_DIM, min_value=0,
                                                max_value=512)
        pipeline = StableAudioPipeline(vae=vae, text_encoder=T5EncoderModel.from_pretrained(t5),
                                       projection_model=projection, tokenizer=T5Tokenizer.from_pretrained(t5),
                                       transformer=transformer, scheduler=CosineDPMSolverMultistepScheduler())
        pipeline.save_pretrained(staging / "stable_audio")

    return build_once(Path(root) / f"tiny-stable-audio-v{TINY_VERSION}-seed{seed}", build) / "stable_audio"


# Stable Audio 3's architecture at toy size: a SAME autoencoder of 400 samples per latent
# (100-sample patches, 4 patches per latent) at the tiny MusicGen's 8 kHz, 20 latents a second,
# so a 10 s window is 200 latents; a diffusion transformer 64 wide and 2 blocks deep over them.
STABLE_AUDIO_3_PATCH = 100
STABLE_AUDIO_3_STRIDE = 4
STABLE_AUDIO_3_LATENT = 16


def build_stable_audio_3(root: Path, seed: int = 0) -> Path:
    """Stable Audio 3's pipeline (diffusers' own classes) at toy size, random weights, with its own
    text encoder: a T5Gemma encoder ``T5_DIM`` wide and a Gemma tokenizer over the tiny corpus
    (``tiny_vocab.gemma_vocab``), a text space of its own. The tiny preset's
    ``--decoder stable-audio-3``, built on first use only, into
    ``<root>/tiny-stable-audio-3-v<N>-seed<S>/stable_audio_3``."""

    def build(staging: Path) -> None:
        from diffusers import (AutoencoderSAME, FlowMatchEulerDiscreteScheduler, StableAudio3DiTModel,
                               StableAudio3DurationEmbedder, StableAudio3Pipeline)
        from transformers import GemmaTokenizer

        from cotvtm.quiet import quiet_diffusers

        quiet_diffusers()
        vocab, merges = tiny_vocab.gemma_vocab()
        tok = GemmaTokenizer(vocab=vocab, merges=merges, padding_side="right")  # positions count from the text
        torch.manual_seed(seed)
        text_encoder = _t5gemma_encoder(tok)
        latent = STABLE_AUDIO_3_LATENT
        vae = AutoencoderSAME(audio_channels=2, patch_size=STABLE_AUDIO_3_PATCH, encoder_channels=16,
                              encoder_c_mults=[2], encoder_strides=[STABLE_AUDIO_3_STRIDE],
                              encoder_transformer_depths=[1], latent_dim=latent, dim_heads=16,
                              use_differential_attention=False, sampling_rate=SAMPLE_RATE)
        transformer = StableAudio3DiTModel(io_channels=latent, embed_dim=64, depth=2, num_heads=4,
                                           cond_token_dim=T5_DIM, global_cond_dim=T5_DIM,
                                           local_add_cond_dim=latent + 1, timestep_features_dim=32,
                                           num_memory_tokens=4)
        _toy_same(vae)
        _wake(transformer)
        pipeline = StableAudio3Pipeline(vae=vae, text_encoder=text_encoder, tokenizer=tok,
                                        duration_embedder=StableAudio3DurationEmbedder(output_dim=T5_DIM,
                                                                                       fourier_dim=32),
                                        transformer=transformer,
                                        scheduler=FlowMatchEulerDiscreteScheduler(stochastic_sampling=True))
        pipeline.save_pretrained(staging / "stable_audio_3")

    return build_once(Path(root) / f"tiny-stable-audio-3-v{TINY_VERSION}-seed{seed}", build) / "stable_audio_3"


def _wake(model) -> None:
    """Give random weights to the layers that start at zero (a no-op until trained): SAME's blocks
    end in them, and so does the DiT's inpainting projection, which would leave every window deaf
    to its context."""
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv1d)) and not layer.weight.any():
                layer.reset_parameters()


def _toy_same(vae) -> None:
    """Make a random SAME a usable toy. Untrained, its output tokens (one for every segment) and
    its biases make one sound whatever the latents, and one set of latents whatever the sound:
    with them at zero (and plain attention: differential attention's two maps cancel over the
    even scores of zero tokens) the sound follows the latents. Then its bottleneck is scaled for
    latents of unit spread, and its last layer for 0.1 RMS (-20 dBFS) from such latents."""
    with torch.no_grad():
        _wake(vae)
        for name, weight in vae.named_parameters():
            if name.endswith(("bias", "new_tokens")):
                weight.zero_()
        vae.bottleneck.running_std.copy_(vae.encode(torch.randn((4, 2, SAMPLE_RATE)) * 0.1).latents.std())
        made = vae.decode(torch.randn((4, STABLE_AUDIO_3_LATENT, 20))).sample
        vae.decoder.blocks[-1].mapping.weight_g.mul_(0.1 / made.std())


def _t5gemma_encoder(tok):
    """A two-layer T5Gemma encoder ``T5_DIM`` wide (Stable Audio 3's is ``google/t5gemma-b-b-ul2``)."""
    from transformers import T5GemmaConfig, T5GemmaEncoderModel

    module = dict(vocab_size=len(tok), hidden_size=T5_DIM, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                  max_position_embeddings=512, sliding_window=64, pad_token_id=tok.pad_token_id,
                  eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    return T5GemmaEncoderModel(T5GemmaConfig(encoder=module, decoder=module, is_encoder_decoder=False,
                                             vocab_size=len(tok)))


def build_all(root: Path, seed: int = 0) -> dict[str, Path]:
    """Build every tiny component under ``root`` (atomically, once) and return their paths."""

    def build(staging: Path) -> None:
        build_clip(staging / "clip", seed)
        build_musicgen_and_t5(staging / "musicgen", staging / "t5", seed)
        build_rationale(staging / "rationale", seed)
        build_prior(staging / "prior", seed)

    root = build_once(Path(root) / f"tiny-v{TINY_VERSION}-seed{seed}", build)
    return {name: root / name for name in COMPONENTS}
