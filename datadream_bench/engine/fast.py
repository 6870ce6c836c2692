"""Make a loaded Stable Diffusion pipeline fast without changing its images beyond the tolerance of its dtype.

What is applied, and why each is exact:
- attention: PyTorch's fused scaled-dot-product attention (diffusers' AttnProcessor2_0, its default since 0.2x, and
  transformers' "sdpa" in the text encoder). Checked, and set where a pipeline came with another processor: the
  same softmax(QK^T/sqrt(d))V, computed by flash / memory-efficient kernels on CUDA.
- channels-last memory format for the UNet and VAE convolutions on CUDA (cuDNN's fast NHWC kernels; the same
  numbers laid out differently). Off on CPU, where oneDNN gains little from it.
- precision: bf16 (fp16 where bf16 is unsupported) on CUDA when asked; the run records its precision either way.
- torch.compile of the UNet, opt-in: the first compile costs about a minute, paid back only over long runs. The
  module is compiled in place (nn.Module.compile), so parameter names, LoRA merging and restoring are unchanged.

Nothing approximate is applied: fewer steps, distilled or tiny VAEs, and feature caching across steps change the
images and are a method's settings, not an engine speed-up. Nothing here changes process-wide flags (TF32,
cuDNN autotuning): a cell must not depend on the state of the process that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class FastReport:
    """What prepare() found and did, for the run record."""

    attention: dict[str, str] = field(default_factory=dict)  # component -> attention implementation in use
    replaced_attention: list[str] = field(default_factory=list)  # components whose processors were swapped to SDPA
    channels_last: bool = False
    dtype: str = ""
    compiled: bool = False

    def as_dict(self) -> dict:
        return {"attention": self.attention, "replaced_attention": self.replaced_attention,
                "channels_last": self.channels_last, "dtype": self.dtype, "compiled": self.compiled}


def _sdpa_processors(module, name: str, report: FastReport) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = module.attn_processors
    kinds = {type(p).__name__ for p in processors.values()}
    if kinds and kinds != {"AttnProcessor2_0"}:
        module.set_attn_processor(AttnProcessor2_0())
        report.replaced_attention.append(f"{name}: {', '.join(sorted(kinds))}")
        kinds = {type(p).__name__ for p in module.attn_processors.values()}
    report.attention[name] = ", ".join(sorted(kinds)) or "none"


def _text_attention(text_encoder, report: FastReport) -> None:
    impl = getattr(text_encoder.config, "_attn_implementation", None) or "eager"
    if impl == "eager" and hasattr(text_encoder, "set_attn_implementation"):
        text_encoder.set_attn_implementation("sdpa")
        report.replaced_attention.append("text_encoder: eager")
        impl = text_encoder.config._attn_implementation
    report.attention["text_encoder"] = impl


def gpu_dtype() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def prepare(pipe, *, dtype: torch.dtype | None = None, channels_last: bool | None = None,
            compile_unet: bool = False) -> FastReport:
    """Put pipe (a diffusers Stable Diffusion pipeline, already on its device) on its fast path, in place.

    dtype: cast the weights to it (None: keep what the pipeline was loaded with). channels_last: None means "on CUDA
    only". compile_unet: torch.compile the UNet (off by default: its first call compiles for about a minute).
    """
    report = FastReport()
    device = pipe.unet.device
    if dtype is not None and dtype != pipe.unet.dtype:
        pipe.to(dtype=dtype)
    report.dtype = str(pipe.unet.dtype).replace("torch.", "")
    _sdpa_processors(pipe.unet, "unet", report)
    _sdpa_processors(pipe.vae, "vae", report)
    if getattr(pipe, "text_encoder", None) is not None:
        _text_attention(pipe.text_encoder, report)
    if channels_last if channels_last is not None else device.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        report.channels_last = True
    if compile_unet:
        pipe.unet.compile(fullgraph=False, dynamic=False)
        report.compiled = True
    pipe.set_progress_bar_config(disable=True)
    return report
