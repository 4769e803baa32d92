"""Schema of the ``deepjscc`` link: a DeepJSCC autoencoder (Bourtsoulatze et al. 2019) trained
through the channel, the learned joint source-channel coding baseline.

Its channel uses are set by the trained network (the channels of its last encoder layer at
1/32 of the side: 288 at 256 px and 1152 at 512 px for the shipped ``small`` preset, the semantic
link's budgets); the link has no bandwidth setting of its own. Torch-free: the implementation
(:mod:`semlink.links.deepjscc`) is imported when the link is built.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from semlink.scenario.limits import _Frozen

if TYPE_CHECKING:
    from semlink.links.protocol import LinkContext

__all__ = ["DEEPJSCC_PRESETS", "DeepJSCCLinkConfig"]

#: DeepJSCC presets shipped with semlink (weights in semlink/data/weights/deepjscc-NAME/).
DEEPJSCC_PRESETS = ("small",)


class DeepJSCCLinkConfig(_Frozen):
    """DeepJSCC: a convolutional encoder's unit-power symbols through the channel, the mirrored
    decoder's image (semlink.models.deepjscc)."""

    type: Literal["deepjscc"]
    preset: Literal[DEEPJSCC_PRESETS] = "small"
    weights: str | None = Field(None, description="A DeepJSCC bundle of `semlink train` "
                                "(model.safetensors or its folder), relative to the scenario; "
                                "None = the preset's shipped weights.")

    kind: ClassVar[str] = "image"

    def build(self, context: LinkContext):
        """The built link (:class:`semlink.links.deepjscc.DeepJSCCLink`)."""
        from semlink.links.deepjscc import DeepJSCCLink

        return DeepJSCCLink.from_config(self, context)
