"""Python functions the model may call through ``function_call`` items."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from pydantic import create_model

from .errors import ConfigError, ModelOutputError

if TYPE_CHECKING:
    from .providers.base import FunctionSpec

# The Responses API refuses a function tool whose name is outside this (openai-python
# FunctionToolParam; the service answers 400), so a bad name is caught when it is registered.
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@dataclass
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any | Awaitable[Any]]

    def definition(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": False,
        }


def _schema_for(fn: Callable[..., Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else Any
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[name] = (annotation, default)
    schema = create_model(f"{fn.__name__}_args", **fields).model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


class FunctionRegistry:
    """Registered functions, sync or async, answered with ``function_call_output``."""

    def __init__(self) -> None:
        self._tools: dict[str, FunctionTool] = {}

    def register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Callable[..., Any]:
        tool_name = name or fn.__name__
        if not FUNCTION_NAME.fullmatch(tool_name):
            raise ConfigError(f"function name {tool_name!r} must be 1-64 letters, digits, _ or - "
                              "(the Responses API refuses other names)")
        self._tools[tool_name] = FunctionTool(
            name=tool_name,
            description=description or inspect.getdoc(fn) or tool_name,
            parameters=parameters or _schema_for(fn),
            fn=fn,
        )
        return fn

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __bool__(self) -> bool:
        return bool(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self._tools.values()]

    def specs(self) -> list["FunctionSpec"]:
        """The functions as every provider declares them (name, description, JSON schema)."""
        from .providers.base import FunctionSpec

        return [FunctionSpec(t.name, t.description, t.parameters) for t in self._tools.values()]

    async def call(self, name: str, arguments: str) -> str:
        """Run a function; its return value (or its error) becomes the output text."""
        tool = self._tools.get(name)
        if tool is None:
            raise ModelOutputError(f"function_call: unknown function {name!r}")
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ModelOutputError(f"function_call {name}: arguments are not JSON ({exc.msg})") from None
        if not isinstance(args, dict):
            raise ModelOutputError(f"function_call {name}: arguments must be a JSON object")
        try:
            result = tool.fn(**args)
            if inspect.isawaitable(result):
                result = await result
        except TypeError as exc:
            return json.dumps({"error": f"bad arguments: {exc}"})
        except Exception as exc:  # the model sees the failure and may try something else
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return result if isinstance(result, str) else json.dumps(result, default=str)
