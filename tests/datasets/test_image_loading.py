import numpy as np
import pytest
from PIL import Image, ImageFile
from zoo import bad, good_odd

from datadream_bench.datasets.images import BadImageError, load_array, load_rgb


def test_odd_images_become_three_channel_uint8(tmp_path):
    files = good_odd(tmp_path)
    for name, path in files.items():
        arr = load_array(path)
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, name
    rgba = load_array(files["rgba"])
    assert tuple(rgba[0, 0]) == (200, 0, 0) and tuple(rgba[0, -1]) == (255, 255, 255)  # transparent -> white
    pal = load_array(files["palette"])
    assert tuple(pal[0, 0]) == (0, 255, 0) and tuple(pal[0, -1]) == (255, 255, 255)
    gray = load_array(files["16bit"])
    assert abs(int(gray[0, 0, 0]) - 127) <= 1  # scaled from 16 bits, not clipped to 255
    cmyk = load_array(files["cmyk"])
    assert cmyk.std() > 10  # real colours survive, not a flat conversion artefact


def test_exif_orientation_is_applied(tmp_path):
    path = good_odd(tmp_path)["exif"]
    with Image.open(path) as raw:
        assert raw.size == (20, 10)
    assert load_rgb(path).size == (10, 20)


@pytest.mark.parametrize("kind,words", [("truncated", "truncated"), ("empty", "identify"), ("text", "identify"),
                                        ("bomb", "pixels"), ("extension", "extension")])
def test_bad_files_name_path_and_reason(tmp_path, kind, words):
    path = bad(tmp_path)[kind]
    with pytest.raises(BadImageError) as e:
        load_rgb(path)
    assert e.value.path == str(path) and words in e.value.reason


def test_bomb_refused_before_pixels_are_decoded(tmp_path, monkeypatch):
    path = bad(tmp_path)["bomb"]

    def no_decode(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(BadImageError, match="bomb"):
        load_rgb(path)


def test_own_pixel_limit_is_checked_from_the_header(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (300, 200)).save(path)
    with pytest.raises(BadImageError, match="300x200"):
        load_rgb(path, max_pixels=300 * 200 - 1)
    assert load_rgb(path, max_pixels=300 * 200).size == (300, 200)


def test_refuses_when_truncated_loading_is_switched_on(tmp_path, monkeypatch):
    path = good_odd(tmp_path)["cmyk"]
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(BadImageError, match="LOAD_TRUNCATED_IMAGES"):
        load_rgb(path)
