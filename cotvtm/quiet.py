"""Keep transformers' own logging to errors: a leaf module that every loader may import."""


def quiet_transformers() -> None:
    """No progress bars or warnings from transformers (they would drown the job's own lines)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def quiet_diffusers() -> None:
    """The same for diffusers, and torch's warning that the Oobleck autoencoder's ``weight_norm``
    is deprecated, printed on every load."""
    import warnings

    from diffusers.utils import logging

    quiet_transformers()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated", category=FutureWarning)


def quiet_sampler() -> None:
    """No warning from torchsde's Brownian tree when Stable Audio's sampler asks it for noise at
    times it rounds (every call); inside ``warnings.catch_warnings()``."""
    import warnings

    warnings.filterwarnings("ignore", message="Should have (ta|tb|t)", module="torchsde")
