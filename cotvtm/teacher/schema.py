"""The teacher's JSON answer: validation, tolerant extraction, and the X_rt / X_mt texts.

Two answer formats are read, whichever prompt asked (``answer_format`` says which one came):

- ``paper``: CoT-VTM Appendix A.1's flat object: ``image_description``, ``step1 reasoning``,
  ``visual elements`` {object, emotion, dynamic, color}, ``visual description``,
  ``step2 reasoning``, ``music elements`` {genre, instruments, emotion, rhythm},
  ``step3 reasoning``, ``music description``. Keys are matched ignoring case, spaces and
  underscores (``step1_reasoning``, ``Music Description``); ``step3 reasoning`` may be missing.
- ``cot-v1``: the nested ``step1`` / ``step2`` / ``step3`` object of the ``cot-v1`` prompt.

Both become one ``CotAnswer``. Models wrap JSON in code fences, add a sentence before or after
it, or return lists where strings are asked for; all of that is accepted. What is not accepted
(no JSON object, broken JSON, a missing or empty field, a field over ``MAX_FIELD_CHARS``) raises
``AnswerError`` with a one-line reason, in the names of the format that was sent (or asked
for), that goes back to the model in a repair turn and, if repairs run out, is recorded as the
failure reason.

X_rt, the rationale the student distils, joins these fields in this order:

    Step 1: <step1 reasoning>
    Visual elements: object: <object>; emotion: <emotion>; dynamic: <dynamic>; color: <color>.
    Visual description: <visual description>
    Step 2: <step2 reasoning>
    Music elements: genre: <genre>; instruments: <instruments>; emotion: <emotion>; rhythm: <rhythm>.
    Step 3: <step3 reasoning>            (when the answer has one)

(one line, parts separated by single spaces). X_mt, the answer, is the music description
alone. A direct (non-CoT) answer has no rationale: its X_rt is empty.
"""

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError

from cotvtm.errors import CotvtmError

# The longest text one field of an answer (a reasoning, an element, the music description; a
# caption or a scene description) may hold: ~2,000 tokens, many times what any step needs, and
# small enough that what a field carries into labels, sidecars and reports stays small.
MAX_FIELD_CHARS = 8192


def _flatten(value: Any) -> Any:
    """Lists of strings (a common model habit for instruments or objects) become one string."""
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v).strip() for v in value)
    return value


def _non_empty(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("empty", "is empty")
    return value


def _bounded(value: str) -> str:
    """A field over ``MAX_FIELD_CHARS`` is refused: it would be carried into every record of it."""
    if len(value) > MAX_FIELD_CHARS:
        raise PydanticCustomError("too_long", too_long(len(value)))
    return value


def too_long(length: int) -> str:
    """Why a field is refused: its length and the limit."""
    return f"is too long: {length:,} characters, over the limit of {MAX_FIELD_CHARS:,}"


def bounded_field(text: str, what: str) -> str:
    """``text`` (a caption, a scene description) when it fits ``MAX_FIELD_CHARS``; else ``AnswerError``."""
    if len(text) > MAX_FIELD_CHARS:
        raise AnswerError(f"{what} {too_long(len(text))}")
    return text


Text = Annotated[str, BeforeValidator(_flatten), AfterValidator(_non_empty), AfterValidator(_bounded)]
Bounded = Annotated[str, AfterValidator(_bounded)]


class VisualElements(BaseModel):
    object: Text
    emotion: Text
    dynamic: Text
    color: Text


class Step1(BaseModel):
    reasoning: Text
    visual_elements: VisualElements
    visual_description: Text


class MusicElements(BaseModel):
    genre: Text
    instruments: Text
    emotion: Text
    rhythm: Text


class Step2(BaseModel):
    reasoning: Text
    music_elements: MusicElements


class Step3(BaseModel):
    music_description: Text
    reasoning: Bounded = ""  # the paper's "step3 reasoning"; cot-v1 answers have none


class CotAnswer(BaseModel):
    """The chain-of-thought answer: three steps, each with its own fields."""

    step1: Step1
    step2: Step2
    step3: Step3


class DirectAnswer(BaseModel):
    """The LLM2music baseline's answer: the music description only."""

    music_description: Text


class AnswerError(CotvtmError):
    """A model answer that cannot be used; ``reason`` is one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def _starts(text: str) -> list[int]:
    """Where a top-level object may start: the first '{', then any '{' opening a line.

    Not every '{': when the outer object is broken, an inner one would decode and the
    reason would wrongly become "missing fields" instead of "invalid JSON".
    """
    first = text.find("{")
    if first < 0:
        return []
    return [first] + [m.start() + 1 for m in re.finditer(r"\n\{", text) if m.start() + 1 > first]


def extract_json(text: str) -> dict:
    """The first JSON object in ``text``: inside a code fence, or anywhere in surrounding prose."""
    if not text or not text.strip():
        raise AnswerError("empty answer")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    first_error = None
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start in _starts(candidate):
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError as exc:
                first_error = first_error or exc
                continue
            if isinstance(value, dict):
                return value
    if first_error is None:
        raise AnswerError("no JSON object in the answer")
    raise AnswerError(f"invalid JSON: {first_error.msg} at line {first_error.lineno} column {first_error.colno}")


def _describe(errors: list[dict]) -> str:
    missing, wrong = [], []
    for item in errors:
        path = ".".join(str(p) for p in item["loc"]) or "answer"
        if item["type"] == "missing":
            missing.append(path)
        elif item["type"] in ("empty", "too_long"):
            wrong.append(f"{path} {item['msg']}")
        else:
            wrong.append(f"{path}: {item['msg']}")
    parts = ([f"JSON missing fields: {', '.join(missing)}"] if missing else []) + wrong
    return "; ".join(parts)


FORMATS = ("paper", "cot-v1", "direct")

# The paper's keys, by their squashed form, and where each goes in a CotAnswer.
PAPER_FIELDS = {
    "step1reasoning": ("step1 reasoning", ("step1", "reasoning")),
    "visualelements": ("visual elements", ("step1", "visual_elements")),
    "visualdescription": ("visual description", ("step1", "visual_description")),
    "step2reasoning": ("step2 reasoning", ("step2", "reasoning")),
    "musicelements": ("music elements", ("step2", "music_elements")),
    "step3reasoning": ("step3 reasoning", ("step3", "reasoning")),
    "musicdescription": ("music description", ("step3", "music_description")),
}
_PAPER_NAMES = {path: name for name, path in PAPER_FIELDS.values()}


def _squash(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def detect_format(data: dict, expected: str = "paper") -> str:
    """``paper`` or ``cot-v1``, from the answer's keys; ``expected`` when it has neither's."""
    keys = {_squash(k) for k in data}
    if keys & PAPER_FIELDS.keys():
        return "paper"
    if keys & {"step1", "step2", "step3"}:
        return "cot-v1"
    return expected


def _from_paper(data: dict) -> dict:
    """The paper's flat object as a CotAnswer's nested one (absent keys stay absent)."""
    nested: dict = {"step1": {}, "step2": {}, "step3": {}}
    for key, value in data.items():
        if _squash(key) in PAPER_FIELDS:
            step, name = PAPER_FIELDS[_squash(key)][1]
            if isinstance(value, dict):
                value = {_squash(k): v for k, v in value.items()}
            nested[step][name] = value
    return nested


def _paper_path(path: tuple) -> tuple:
    """An error location of the nested form, named as the paper names it."""
    for length in (2, 1):
        if path[:length] in _PAPER_NAMES:
            return (_PAPER_NAMES[path[:length]], *path[length:])
    return path


def parse_answer_format(text: str, cot: bool = True, expected: str = "paper") -> tuple[CotAnswer | DirectAnswer, str]:
    """Validate a model's answer text in either CoT format (``expected``: the one the prompt asked
    for, named in errors when the answer has neither); the answer and its format."""
    data = extract_json(text)
    if not cot:
        try:
            return DirectAnswer.model_validate(data), "direct"
        except ValidationError as exc:
            raise AnswerError(_describe(exc.errors())) from None
    found = detect_format(data, expected)
    try:
        return CotAnswer.model_validate(_from_paper(data) if found == "paper" else data), found
    except ValidationError as exc:
        errors = exc.errors()
        if found == "paper":
            errors = [{**error, "loc": _paper_path(tuple(error["loc"]))} for error in errors]
        raise AnswerError(_describe(errors)) from None


def parse_answer(text: str, cot: bool = True) -> CotAnswer | DirectAnswer:
    """Validate a model's answer text; raises ``AnswerError`` saying exactly what is wrong."""
    return parse_answer_format(text, cot)[0]


def paper_json(answer: CotAnswer, caption: str) -> dict:
    """A CotAnswer in the paper's format (what the offline teacher writes for ``cot-paper-v1``)."""
    s1, s2, s3 = answer.step1, answer.step2, answer.step3
    out = {"image_description": caption, "step1 reasoning": s1.reasoning,
           "visual elements": s1.visual_elements.model_dump(), "visual description": s1.visual_description,
           "step2 reasoning": s2.reasoning, "music elements": s2.music_elements.model_dump()}
    if s3.reasoning:
        out["step3 reasoning"] = s3.reasoning
    out["music description"] = s3.music_description
    return out


def _sentence(label: str, pairs: list[tuple[str, str]]) -> str:
    return f"{label}: " + "; ".join(f"{name}: {value.rstrip('.')}" for name, value in pairs) + "."


def x_rt(answer: CotAnswer | DirectAnswer) -> str:
    """The rationale text, fields in the order given in the module docstring."""
    if isinstance(answer, DirectAnswer):
        return ""
    s1, s2 = answer.step1, answer.step2
    v, m = s1.visual_elements, s2.music_elements
    return " ".join([
        f"Step 1: {s1.reasoning}",
        _sentence("Visual elements", [("object", v.object), ("emotion", v.emotion), ("dynamic", v.dynamic),
                                      ("color", v.color)]),
        f"Visual description: {s1.visual_description}",
        f"Step 2: {s2.reasoning}",
        _sentence("Music elements", [("genre", m.genre), ("instruments", m.instruments), ("emotion", m.emotion),
                                     ("rhythm", m.rhythm)]),
        *([f"Step 3: {answer.step3.reasoning.strip()}"] if answer.step3.reasoning.strip() else []),
    ])


def x_mt(answer: CotAnswer | DirectAnswer) -> str:
    """The music description: what the student's E_m target is made from."""
    if isinstance(answer, DirectAnswer):
        return answer.music_description
    return answer.step3.music_description
