"""The two wire formats: Anthropic's Messages API and OpenAI-compatible Chat Completions.

Both SDKs retry 429, 5xx and timeouts themselves with exponential backoff (``max_retries``);
what still fails reaches ``Adjudicator.adjudicate`` as an error and the local answer is kept.
Keys are read from the environment by name and never stored elsewhere.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

from pipeline.adjudicate.base import SYSTEM, AdjudicationRequest, Adjudicator, Answer
from pipeline.errors import ConfigError
from pipeline.rules.checks import in_writing_order
from pipeline.schema.compiled import for_models


def _wire_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema the API model answers in: totals after the rows they add up, as the local
    model writes them (``in_writing_order``; a small OpenAI-compatible model copies the first
    line's amount as the net otherwise), without our own keywords."""
    return {k: v for k, v in in_writing_order(for_models(schema)).items() if k not in ("$schema", "$id", "x-rules")}


def _key(env: str, base_url: str | None) -> str:
    key = os.environ.get(env)
    if key:
        return key
    if base_url:  # a local server (vLLM, llama.cpp, a test double) needs no key
        return "unused"
    raise ConfigError(f"adjudication needs an API key: set {env} in the environment")


@dataclass
class AnthropicAdjudicator(Adjudicator):
    """Claude through the Messages API, answering through a tool whose input schema is ours."""

    api_key_env: str = "ANTHROPIC_API_KEY"

    def __post_init__(self) -> None:
        import anthropic

        self._client = anthropic.Anthropic(api_key=_key(self.api_key_env, self.base_url), base_url=self.base_url,
                                           timeout=self.timeout_s, max_retries=self.max_retries)

    @property
    def client(self) -> Any:
        return self._client

    def params(self, request: AdjudicationRequest) -> dict[str, Any]:
        """The Messages API request body (also one request of a Message Batch)."""
        content: list[dict[str, Any]] = []
        if request.png:
            content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                          "data": base64.b64encode(request.png).decode()}})
        content.append({"type": "text", "text": request.user_text()})
        return {"model": self.model, "max_tokens": self.max_output_tokens, "system": SYSTEM,
                "messages": [{"role": "user", "content": content}],
                "tools": [{"name": "record", "description": "The correct record for this page.",
                           "input_schema": _wire_schema(request.schema)}],
                "tool_choice": {"type": "tool", "name": "record"}}

    @staticmethod
    def answer(message: Any) -> Answer:
        """The tool input of a Messages API response (or its text, to be reported as invalid)."""
        tool = next((b for b in message.content if getattr(b, "type", "") == "tool_use"), None)
        value: Any = tool.input if tool is not None else "".join(getattr(b, "text", "") for b in message.content)
        return Answer(value, int(message.usage.input_tokens), int(message.usage.output_tokens))

    def call(self, request: AdjudicationRequest) -> Answer:
        return self.answer(self.client.messages.create(**self.params(request)))


@dataclass
class OpenAIAdjudicator(Adjudicator):
    """Any OpenAI-compatible Chat Completions server (OpenAI, vLLM, llama.cpp server, Ollama)."""

    api_key_env: str = "OPENAI_API_KEY"
    send_image: bool = True
    # "json_schema" (OpenAI, vLLM) or "json_object" with a schema (llama-cpp-python's server)
    response_format: str = "json_schema"

    def __post_init__(self) -> None:
        import openai

        self._client = openai.OpenAI(api_key=_key(self.api_key_env, self.base_url), base_url=self.base_url,
                                     timeout=self.timeout_s, max_retries=self.max_retries)

    def call(self, request: AdjudicationRequest) -> Answer:
        schema = _wire_schema(request.schema)
        parts: list[dict[str, Any]] = []
        if request.png and self.send_image:
            parts.append({"type": "image_url", "image_url": {
                "url": "data:image/png;base64," + base64.b64encode(request.png).decode()}})
        parts.append({"type": "text", "text": request.user_text()})
        fmt: dict[str, Any] = (
            {"type": "json_schema", "json_schema": {"name": "record", "schema": schema}}
            if self.response_format == "json_schema" else {"type": "json_object", "schema": schema})
        client: Any = self._client  # the SDK's overloads do not type "json_object" with a schema
        response = client.chat.completions.create(
            model=self.model, max_tokens=self.max_output_tokens, temperature=0,
            messages=[{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": parts if len(parts) > 1 else parts[0]["text"]}],
            response_format=fmt,
        )
        usage = response.usage
        return Answer(response.choices[0].message.content or "", int(usage.prompt_tokens if usage else 0),
                      int(usage.completion_tokens if usage else 0))
