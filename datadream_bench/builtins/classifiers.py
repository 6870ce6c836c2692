"""Built-in classifier plugins."""

from __future__ import annotations

from .. import api
from ..classifier.clip_lora import ClipLora


@api.hookimpl
def register_classifiers(register):
    register(ClipLora())
