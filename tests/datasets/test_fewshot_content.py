"""The few-shot draw follows the images' content, not their paths: the same images in another layout, under other
file names, draw the same set under the same key, and the key holds the digests of the chosen images."""

from pathlib import Path

from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.datasets.fewshot import draw_few_shot
from datadream_bench.datasets.registry import DATASETS
from datadream_bench.fingerprint import file_digest, fingerprint


def test_the_same_images_in_two_layouts_draw_the_same_set(make):
    coop, _ = prepare_dataset(*make("eurosat", "coop"), shots=(1,), seeds=(0,))
    adapter, options = make("eurosat", "folder")
    # the plain-folder copy names each class's two train images the other way round
    for folder in (options.data_root / DATASETS["eurosat"].dirs[0] / "train").iterdir():
        a, b = sorted(folder.iterdir())
        a.rename(a.with_name("swap")), b.rename(a), (a.with_name("swap")).rename(b)
    folders, _ = prepare_dataset(adapter, options, shots=(1,), seeds=(0,))
    assert coop.fingerprint() == folders.fingerprint()

    renamed = 0
    for seed in (0, 1, 2):
        x, y = draw_few_shot(coop, seed, 1), draw_few_shot(folders, seed, 1)
        digests = [[file_digest(s.path) for s in group] for group in x.shots]
        assert digests == [[file_digest(s.path) for s in group] for group in y.shots]
        assert x.fingerprint() == y.fingerprint() and x.chosen == fingerprint(digests)
        renamed += sum(Path(s.path).name != Path(t.path).name for s, t in zip(x.samples, y.samples))
    assert renamed  # the same images were drawn under other names: by path order they would not have been
