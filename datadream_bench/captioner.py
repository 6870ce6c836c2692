"""What an image captioner is: a plugin (hook `register_captioners`) that writes one caption per image.

A method that prompts with captions (DISEF) names a captioner in its config and runs it in its adapt stage, so
each real shot is captioned once and the captions are kept as an artifact.

    class MyCaptioner(api.Captioner):
        name = "my-captioner"
        needs_model = True
        def caption(self, images, class_name, *, source, device):
            return [...]  # one string per image

    @api.hookimpl
    def register_captioners(register):
        register(MyCaptioner())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image


class Captioner:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # True: caption() loads weights from `source` (a local folder or a hub id in the local cache), which the runner
    # checks for before any work starts.
    needs_model: ClassVar[bool] = False

    def caption(self, images: list[Image], class_name: str, *, source: str = "", device: str = "cpu") -> list[str]:
        """One caption per image; every image shows an instance of class_name."""
        raise TypeError(f"captioner {self.name} does not implement caption()")


def get_captioner(name: str) -> Captioner:
    """The installed captioner called `name` (built-in or from a plugin); unknown names list the valid ones."""
    from .plugins import load_registry

    return load_registry().get("captioners", name)


def run_captioner(captioner: Captioner, images: list[Image], class_name: str, *, source: str = "",
                  device: str = "cpu") -> list[str]:
    """caption() with its contract checked: one non-empty string per image."""
    captions = captioner.caption(images, class_name, source=source, device=device)
    if len(captions) != len(images) or not all(isinstance(c, str) and c.strip() for c in captions):
        raise ValueError(f"captioner {captioner.name} returned {len(captions)} captions for {len(images)} images, "
                         f"or an empty one: {captions[:3]}")
    return [c.strip() for c in captions]
