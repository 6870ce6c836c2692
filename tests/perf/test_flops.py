"""The FLOP model: counted on the real SD 2.1-base / CLIP ViT-B/16 shapes, on meta tensors."""

import pytest

from datadream_bench.perf import costs, flops


def test_unet_forward_matches_the_reference_count():
    # SD 2.1-base UNet at a 64x64 latent, batch 1: 804.3 GFLOP.
    assert flops.unet_forward() == pytest.approx(804.3e9, rel=0.01)


def test_a_paper_image_is_about_83_tflop():
    image = costs.image_flops(costs.Generation(steps=50, guidance_scale=2.0))
    assert image == pytest.approx(83e12, rel=0.02)
    # guidance doubles the UNet work, nothing else
    unguided = costs.image_flops(costs.Generation(steps=50, guidance_scale=1.0))
    assert image - unguided == pytest.approx(50 * flops.unet_forward() + flops.sd_text_forward(), rel=1e-9)


def test_counts_scale_with_steps_batch_and_resolution():
    g10, g20 = costs.Generation(steps=10), costs.Generation(steps=20)
    fixed = flops.vae_decode() + 2 * flops.sd_text_forward()
    assert costs.image_flops(g20) - fixed == 2 * (costs.image_flops(g10) - fixed)
    assert costs.sd_lora_step_flops(8) == 8 * costs.sd_lora_step_flops(1)
    # batch 1 counts scale to batch 2 exactly: the layers are linear in the batch
    import torch

    from datadream_bench.perf import architectures as arch

    unet = arch.sd_unet()
    t = torch.tensor([1, 1], device="meta")
    two = flops.count(lambda: unet(torch.empty(2, 4, 32, 32, device="meta"), t,
                                   torch.empty(2, 77, 1024, device="meta")))
    assert two == 2 * flops.unet_forward(32)
    # attention grows faster than the pixels: a 96x96 latent costs more than 2.25x a 64x64 one
    assert flops.unet_forward(32) < flops.unet_forward() / 4 * 1.2


def test_img2img_runs_a_fraction_of_the_schedule_and_encodes_its_start():
    full = costs.image_flops(costs.Generation(steps=50))
    half = costs.image_flops(costs.Generation(steps=50, strength=0.5))
    assert half == pytest.approx(full - 50 * flops.unet_forward() + flops.vae_encode(), rel=1e-9)


def test_training_costs_about_twice_a_forward_and_lora_text_is_counted():
    assert 2.0 < flops.unet_lora_train() / flops.unet_forward() < 2.3
    assert costs.sd_lora_step_flops(1, train_text_encoder=True) - costs.sd_lora_step_flops(1, False) == \
        flops.sd_text_lora_train()
    # ViT-B/16 at 224 px: 17.6 GMAC = 35.1 GFLOP per image forward
    assert flops.clip_image_forward() == pytest.approx(35.1e9, rel=0.01)
    assert flops.clip_text_forward(77) > 3.5 * flops.clip_text_forward(20)


def test_floors_at_a_peak():
    f = costs.floors(989.4)
    assert f["image"] == pytest.approx(costs.image_flops(costs.Generation()) / 989.4e12)
    assert f["unet_step"] * 50 < f["image"]
