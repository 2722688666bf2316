"""What a ``generateContent`` request must look like, rule by rule, each with where its message
comes from, and the checks that apply them.

Sources: ``observed`` — the wording the Gemini API is publicly reported to answer with (issue
threads quoting it); ``documented`` — the Gemini API docs or google-genai say it; ``ours`` — the
stand-in's own sentence for a client bug the service words in a way nobody wrote down, or lets
pass while the model's work goes wrong (a screenshot missing, a call executed unconfirmed).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["documented", "observed", "ours"]


@dataclass(frozen=True)
class Reason:
    status: int
    status_name: str  # google.rpc.Code name: INVALID_ARGUMENT, PERMISSION_DENIED, …
    template: str
    source: Source = "ours"


_IA = "INVALID_ARGUMENT"
_TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"

REASONS: dict[str, Reason] = {
    "missing_api_key": Reason(403, "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). Please use API "
        "Key or other form of API consumer identity to call this API.", "observed"),
    "invalid_api_key": Reason(400, _IA, "API key not valid. Please pass a valid API key.", "observed"),
    "not_found": Reason(404, "NOT_FOUND", "Method not found.", "observed"),
    "unknown_model": Reason(404, "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.", "observed"),
    "invalid_json": Reason(400, _IA, "Invalid JSON payload received. {detail}", "observed"),
    "unknown_field": Reason(400, _IA,
        "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field.", "observed"),
    "bad_type": Reason(400, _IA, "Invalid value at '{at}' ({expected}), {value}", "observed"),
    "no_contents": Reason(400, _IA, "* GenerateContentRequest.contents: contents is not specified", "observed"),
    "bad_role": Reason(400, _IA, "Please use a valid role: user, model.", "observed"),
    "empty_parts": Reason(400, _IA,
        "* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.", "observed"),
    "bad_environment": Reason(400, _IA,
        "Invalid value at 'tools[{index}].computer_use.environment' "
        "(type.googleapis.com/google.ai.generativelanguage.v1beta.Tool.ComputerUse.Environment), \"{value}\"",
        "observed"),
    "unknown_excluded": Reason(400, _IA,
        "excludedPredefinedFunctions names {name!r}, which is not a predefined computer-use function."),
    "no_computer_use": Reason(400, _IA,
        "The stand-in plays computer-use models: the request needs a tools entry with computerUse."),
    "bad_image": Reason(400, _IA, f"Unable to process input image. Please retry or report in {_TROUBLESHOOTING}",
        "observed"),
    "response_count": Reason(400, _IA,
        "Please ensure that the number of function response parts is equal to the number of function call "
        "parts of the function call turn.", "observed"),
    "response_not_after_call": Reason(400, _IA,
        "Please ensure that function response turn comes immediately after a function call turn.", "observed"),
    "response_name": Reason(400, _IA,
        "contents[{index}].parts[{part}]: the functionResponse is named {got!r}, but the call it answers "
        "is {want!r}."),
    "missing_thought_signature": Reason(400, _IA,
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
        "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
        "data, function call `default_api:{name}` , position {position}. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", "observed"),
    "altered_model_turn": Reason(400, _IA,
        "contents[{index}] is not the model turn the stand-in sent ({detail}): send the model's content back "
        "unchanged."),
    "missing_model_turn": Reason(400, _IA,
        "The request replays {got} model turn(s) but the conversation has {want}: send the whole history."),
    "missing_screenshot": Reason(400, _IA,
        "contents[{index}].parts[{part}]: the answer to computer-use call {name!r} carries no screenshot in "
        "functionResponse.parts (an inlineData image/png part)."),
    "missing_url": Reason(400, _IA,
        "contents[{index}].parts[{part}]: the answer to computer-use call {name!r} in ENVIRONMENT_BROWSER "
        "has no response.url."),
    "unconfirmed_call": Reason(400, _IA,
        "contents[{index}].parts[{part}]: call {name!r} required confirmation (safety_decision "
        "require_confirmation) and was answered without safety_acknowledgement \"true\": it ran unconfirmed."),
    "needless_acknowledgement": Reason(400, _IA,
        "contents[{index}].parts[{part}]: call {name!r} had no safety_decision to acknowledge."),
    "script_exhausted": Reason(400, "FAILED_PRECONDITION", "The stand-in's script has no turn {index} (it has {count})."),
    "script_error": Reason(500, "INTERNAL", "The stand-in's script failed: {error}"),
    # injected faults
    "rate_limited": Reason(429, "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. Please retry in {wait}s.",
        "observed"),
    "internal": Reason(500, "INTERNAL", f"An internal error has occurred. Please retry or report in {_TROUBLESHOOTING}",
        "observed"),
    "unavailable": Reason(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", "observed"),
}


class Rejected(Exception):
    def __init__(self, rule: str, details: list[dict[str, Any]] | None = None, **fields: Any) -> None:
        self.rule = rule
        self.reason = REASONS[rule]
        self.message = self.reason.template.format(**fields)
        self.details = details or []
        super().__init__(self.message)


# --- the request's schema: message → {field: type of its value} ------------------------------------
# A type is another message's name, "Name[]" for a list of them, or None for a scalar / free value.

ANY = None
SCHEMA: dict[str, dict[str, str | None]] = {
    "GenerateContentRequest": {"model": ANY, "contents": "Content[]", "tools": "Tool[]", "toolConfig": ANY,
                               "safetySettings": ANY, "systemInstruction": "Content",
                               "generationConfig": "GenerationConfig", "cachedContent": ANY},
    "Content": {"role": ANY, "parts": "Part[]"},
    "Part": {"text": ANY, "thought": ANY, "thoughtSignature": ANY, "inlineData": "Blob", "fileData": ANY,
             "functionCall": "FunctionCall", "functionResponse": "FunctionResponse", "executableCode": ANY,
             "codeExecutionResult": ANY, "videoMetadata": ANY, "mediaResolution": ANY, "partMetadata": ANY},
    "Blob": {"mimeType": ANY, "data": ANY},
    "FunctionCall": {"id": ANY, "name": ANY, "args": ANY},
    "FunctionResponse": {"id": ANY, "name": ANY, "response": ANY, "parts": "FunctionResponsePart[]",
                         "willContinue": ANY, "scheduling": ANY},
    "FunctionResponsePart": {"inlineData": "Blob", "fileData": ANY},
    "Tool": {"functionDeclarations": "FunctionDeclaration[]", "computerUse": "ComputerUse", "googleSearch": ANY,
             "googleSearchRetrieval": ANY, "codeExecution": ANY, "urlContext": ANY, "fileSearch": ANY,
             "googleMaps": ANY},
    "ComputerUse": {"environment": ANY, "excludedPredefinedFunctions": ANY},
    "FunctionDeclaration": {"name": ANY, "description": ANY, "parameters": ANY, "parametersJsonSchema": ANY,
                            "response": ANY, "responseJsonSchema": ANY, "behavior": ANY},
    "GenerationConfig": {"temperature": ANY, "topP": ANY, "topK": ANY, "candidateCount": ANY,
                         "maxOutputTokens": ANY, "stopSequences": ANY, "responseMimeType": ANY,
                         "responseSchema": ANY, "responseJsonSchema": ANY, "presencePenalty": ANY,
                         "frequencyPenalty": ANY, "seed": ANY, "responseLogprobs": ANY, "logprobs": ANY,
                         "thinkingConfig": "ThinkingConfig", "mediaResolution": ANY, "responseModalities": ANY,
                         "speechConfig": ANY, "imageConfig": ANY},
    "ThinkingConfig": {"includeThoughts": ANY, "thinkingBudget": ANY, "thinkingLevel": ANY},
}


def camel(name: str) -> str:
    """Proto JSON takes either spelling: ``function_call`` and ``functionCall`` are one field."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camelized(value: Any) -> Any:
    """``value`` with every key of a schema message in camelCase (free values left alone)."""
    return _camelize(value, "GenerateContentRequest")


def _camelize(value: Any, message: str | None) -> Any:
    if message is None:
        return value
    if message.endswith("[]"):
        return [_camelize(v, message[:-2]) for v in value] if isinstance(value, list) else value
    if not isinstance(value, dict):
        return value
    fields = SCHEMA[message]
    return {camel(k): _camelize(v, fields.get(camel(k))) for k, v in value.items()}


def check_schema(value: Any, message: str = "GenerateContentRequest", at: str = "") -> None:
    """Unknown fields and wrong shapes, as the service's JSON → proto parser refuses them."""
    if message.endswith("[]"):
        if not isinstance(value, list):
            raise Rejected("bad_type", at=at, expected="list", value=_short(value))
        for n, item in enumerate(value):
            check_schema(item, message[:-2], f"{at}[{n}]")
        return
    if not isinstance(value, dict):
        raise Rejected("bad_type", at=at, expected=message, value=_short(value))
    fields = SCHEMA[message]
    for key, item in value.items():
        name = camel(key)
        if name not in fields:
            raise Rejected("unknown_field", name=key, at=f" at '{at}'" if at else "")
        child = fields[name]
        if child is not None:
            check_schema(item, child, f"{at}.{_snake(name)}" if at else _snake(name))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def png_size(data: str) -> tuple[int, int]:
    """Width and height of a base64 PNG; ``bad_image`` when it is not one."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Rejected("bad_image") from None
    if len(raw) < 24 or raw[:8] != b"\x89PNG\r\n\x1a\n" or raw[12:16] != b"IHDR":
        raise Rejected("bad_image")
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


__all__ = ["REASONS", "Reason", "Rejected", "SCHEMA", "camel", "camelized", "check_schema", "png_size"]
