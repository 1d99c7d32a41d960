"""Counts written for people, in the console and the report: "1 input", "2 inputs", "2 videos
and 1 image". One place, so that no line says "1 inputs"."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, the noun in the plural (``plural``, else ``noun`` + s) unless ``n`` is 1."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def media(videos: int, images: int) -> str:
    """Videos and images apart, those that are there: "2 videos and 1 image"; "nothing" for none."""
    parts = [counted(n, noun) for n, noun in ((videos, "video"), (images, "image")) if n]
    return " and ".join(parts) or "nothing"
