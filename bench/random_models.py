"""Real-size MusicGen and Stable Audio architectures with random weights, for benchmarks: no checkpoint can be
downloaded here, and the cost of decoding depends on the shapes, not on the weights.

MusicGen's sizes as published (the text encoder is t5-base for all; EnCodec at 32 kHz, 50 frames/s,
4 codebooks of 2048): small 1024 wide x 24 layers x 16 heads, medium 1536 x 48 x 24, large
2048 x 48 x 32.

Stable Audio 3 medium (``stabilityai/stable-audio-3-medium``), its ``model_config.json`` as
diffusers' classes take it (``cotvtm/sa3_convert.py`` maps one to the other). The DiT:
1536 wide, 24 blocks of 24 heads (64 each), differential attention, SwiGLU x4, 64 memory tokens,
256 latent channels, text tokens 768 wide (T5Gemma b-b), the duration's 768 (256 Fourier
features, 0 to 384 s), inpainting input 257 wide (latents and mask); these are diffusers' own
defaults for this class, and its tests check them against that config as "PROD_CFG". The SAME-L
autoencoder as ``AutoencoderSAME``'s documentation gives it: stereo 44.1 kHz in 256-sample
patches, one level 256 x 6 = 1536 wide, stride 16 (4096 samples per latent), 12 differential
layers of 64-wide heads, SwiGLU x3, a band of one latent either side, 8 sinusoidal layers at the
decoder's end, 256 latent channels: 852 M parameters, the figure documented for SAME-L (the DiT
has 1.45 B; 2.3 B in all, which the model card rounds to 2 B).
The distilled model's sampler: flow-matching Euler over timesteps in [0, 1], ping-pong re-noise.
"""

import torch

SIZES = {"small": (1024, 24, 16), "medium": (1536, 48, 24), "large": (2048, 48, 32),
         "mini": (64, 2, 4)}  # mini: the same code paths at toy size, for a CPU run of the GPU scripts


def musicgen(size: str, device: str = "cpu", dtype=torch.float32):
    from transformers import (EncodecConfig, GenerationConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, T5Config)

    width, layers, heads = SIZES[size]
    mini = size == "mini"
    t5 = (T5Config(vocab_size=256, d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16) if mini else
          T5Config(vocab_size=32128, d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64))
    codec = EncodecConfig(sampling_rate=32000, codebook_size=2048, num_filters=8 if mini else 64,
                          hidden_size=16 if mini else 128,
                          upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2], use_causal_conv=False,
                          use_conv_shortcut=False, audio_channels=1, normalize=False)
    decoder = MusicgenDecoderConfig(vocab_size=2048, hidden_size=width, num_hidden_layers=layers,
                                    num_attention_heads=heads, ffn_dim=4 * width, num_codebooks=4,
                                    max_position_embeddings=2048, pad_token_id=2048, bos_token_id=2048)
    config = MusicgenConfig(text_encoder=t5.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
    torch.manual_seed(0)
    with torch.device(device):
        model = MusicgenForConditionalGeneration(config)
    model = model.to(dtype).eval()
    model.generation_config = GenerationConfig(decoder_start_token_id=2048, pad_token_id=2048, bos_token_id=2048,
                                               do_sample=True, guidance_scale=3.0, top_k=250, max_length=1500)
    return model


def stable_audio(device: str = "cpu", dtype=torch.float32):
    """Stable Audio Open 1.0's pipeline at its published size with random weights: the
    diffusers classes' defaults are that model's config (a 1.05 B-parameter diffusion transformer
    over 1024 latents of 64 channels, the Oobleck autoencoder at 44.1 kHz stereo, 2048 samples per
    latent), its text projection from t5-base's 768 and t5-base itself. No tokenizer: the job
    gives the pipeline E_m, never text."""
    from diffusers import (AutoencoderOobleck, CosineDPMSolverMultistepScheduler, StableAudioDiTModel,
                           StableAudioPipeline, StableAudioProjectionModel)
    from transformers import T5Config, T5EncoderModel

    from cotvtm.quiet import quiet_diffusers

    quiet_diffusers()
    torch.manual_seed(0)
    with torch.device(device):
        parts = dict(vae=AutoencoderOobleck(), transformer=StableAudioDiTModel(),
                     projection_model=StableAudioProjectionModel(text_encoder_dim=768, conditioning_dim=768,
                                                                 min_value=0, max_value=512),
                     text_encoder=T5EncoderModel(T5Config(vocab_size=32128, d_model=768, d_ff=3072, num_layers=12,
                                                          num_heads=12, d_kv=64)))
    pipeline = StableAudioPipeline(tokenizer=None, scheduler=CosineDPMSolverMultistepScheduler(), **parts)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device, dtype)


# Stable Audio 3's sizes: (DiT, SAME autoencoder) arguments; mini: the same code paths at toy size (CPU runs).
SA3_SIZES = {
    "medium": (dict(io_channels=256, embed_dim=1536, depth=24, num_heads=24, cond_token_dim=768, global_cond_dim=768,
                    local_add_cond_dim=257, timestep_features_dim=256, ff_mult=4.0, num_memory_tokens=64,
                    use_differential_attention=True),
               dict(audio_channels=2, patch_size=256, encoder_channels=256, encoder_c_mults=[6], encoder_strides=[16],
                    encoder_transformer_depths=[12], latent_dim=256, use_differential_attention=True, dim_heads=64,
                    ff_mult=3, sliding_window=1, encoder_sinusoidal_blocks=[0], decoder_sinusoidal_blocks=[8],
                    sampling_rate=44100)),
    "mini": (dict(io_channels=16, embed_dim=64, depth=2, num_heads=4, cond_token_dim=32, global_cond_dim=32,
                  local_add_cond_dim=17, timestep_features_dim=32, num_memory_tokens=4),
             dict(audio_channels=2, patch_size=256, encoder_channels=16, encoder_c_mults=[2], encoder_strides=[4],
                  encoder_transformer_depths=[1], latent_dim=16, dim_heads=16, sampling_rate=44100)),
}


def stable_audio_3(device: str = "cpu", dtype=torch.float32, size: str = "medium"):
    """Stable Audio 3's inpainting pipeline (the Music stage's) at ``size`` with random weights:
    the DiT and the duration embedder in ``dtype``, the autoencoder in float32, as
    ``models.load_stable_audio_3`` loads them. No text encoder or tokenizer: the job gives the
    transformer E_m, never text."""
    from diffusers import (AutoencoderSAME, StableAudio3DiTModel, StableAudio3DurationEmbedder,
                           StableAudio3InpaintPipeline)

    from cotvtm.sa3_convert import _scheduler
    from cotvtm.quiet import quiet_diffusers

    quiet_diffusers()
    dit, same = SA3_SIZES[size]
    torch.manual_seed(0)
    with torch.device(device):
        pipeline = StableAudio3InpaintPipeline(
            vae=AutoencoderSAME(**same), text_encoder=None, tokenizer=None,
            duration_embedder=StableAudio3DurationEmbedder(output_dim=dit["global_cond_dim"]),  # 256 features, 0-384 s
            transformer=StableAudio3DiTModel(**dit), scheduler=_scheduler(stochastic=True))
    pipeline.set_progress_bar_config(disable=True)
    pipeline.transformer.to(dtype)
    pipeline.duration_embedder.to(dtype)
    return pipeline
