"""Keep transformers' own logging to errors: a leaf module that every loader may import."""


def quiet_transformers() -> None:
    """No progress bars or warnings from transformers (they would drown the job's own lines)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
