"""Real-size MusicGen and Stable Audio architectures with random weights, for benchmarks: no checkpoint can be
downloaded here, and the cost of decoding depends on the shapes, not on the weights.

Sizes as published (the text encoder is t5-base for all; EnCodec at 32 kHz, 50 frames/s,
4 codebooks of 2048): small 1024 wide x 24 layers x 16 heads, medium 1536 x 48 x 24, large
2048 x 48 x 32.
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
