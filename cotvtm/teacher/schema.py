"""The teacher's JSON answer: validation, tolerant extraction, and the X_rt / X_mt texts.

Models wrap JSON in code fences, add a sentence before or after it, or return lists where
strings are asked for; all of that is accepted. What is not accepted (no JSON object,
broken JSON, a missing or empty field) raises ``AnswerError`` with a one-line reason that
is sent back to the model in a repair turn and, if repairs run out, recorded as the
failure reason.

X_rt, the rationale the student distils, joins these fields in this order:

    Step 1: <step1.reasoning>
    Visual elements: object: <object>; emotion: <emotion>; dynamic: <dynamic>; color: <color>.
    Visual description: <step1.visual_description>
    Step 2: <step2.reasoning>
    Music elements: genre: <genre>; instruments: <instruments>; emotion: <emotion>; rhythm: <rhythm>.

(one line, parts separated by single spaces). X_mt, the answer, is step3.music_description
alone. A direct (non-CoT) answer has no rationale: its X_rt is empty.
"""

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError

from cotvtm.errors import CotvtmError


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


Text = Annotated[str, BeforeValidator(_flatten), AfterValidator(_non_empty)]


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


def _describe(error: ValidationError) -> str:
    missing, wrong = [], []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "answer"
        if item["type"] == "missing":
            missing.append(path)
        elif item["type"] == "empty":
            wrong.append(f"{path} is empty")
        else:
            wrong.append(f"{path}: {item['msg']}")
    parts = ([f"JSON missing fields: {', '.join(missing)}"] if missing else []) + wrong
    return "; ".join(parts)


def parse_answer(text: str, cot: bool = True) -> CotAnswer | DirectAnswer:
    """Validate a model's answer text; raises ``AnswerError`` saying exactly what is wrong."""
    data = extract_json(text)
    model = CotAnswer if cot else DirectAnswer
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AnswerError(_describe(exc)) from None


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
    ])


def x_mt(answer: CotAnswer | DirectAnswer) -> str:
    """The music description: what the student's E_m target is made from."""
    if isinstance(answer, DirectAnswer):
        return answer.music_description
    return answer.step3.music_description
