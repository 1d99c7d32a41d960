"""The music side's named choices, in a module that imports nothing, so that the command line
reads them (to list and check ``--mode`` and ``--decoder``) without loading torch."""

MODES = ("continuous", "independent")  # how windows of one video follow each other (compose.py)
MUSICGEN_DECODERS = ("engine", "generate")  # how MusicGen decodes (musicgen.py)
DECODERS = (*MUSICGEN_DECODERS, "stable-audio", "stable-audio-3")  # every decoder behind decoder.py's interface
