"""The ten paper datasets: the facts dd-bench knows about each (shared/REFERENCE.md section 1).

Class *names* are never listed here: they come from the user's copy (split file, metadata files, features, folder
names). What is here is how to read them: which raw names CoOp renamed, how a raw name is spelled as a class name,
and the rule that gives the canonical (CoOp) label order, so that every layout yields the same classes in the same
order and a source whose order differs is caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UsageError


@dataclass(frozen=True)
class DatasetInfo:
    key: str
    title: str
    num_classes: int
    coop_sizes: tuple[int, int, int]  # train, val, test of the CoOp split; val 0 = the split has none
    smallest_train: int
    prompt_word: str  # DataDream's dataset word: "a {word}photo of a {class}"
    template: str  # CoOp's zero-shot template
    dirs: tuple[str, ...]  # folder names people keep a copy under (CoOp's first, then torchvision's, then others)
    image_dir: str  # images inside the CoOp folder ("" = the folder itself)
    split_file: str | None  # CoOp's split_zhou_*.json (None: the split comes from the dataset's own files)
    renames: dict = field(default_factory=dict)  # raw folder/metadata name -> the class name CoOp uses
    drop: tuple[str, ...] = ()  # raw classes CoOp leaves out
    # How a raw name becomes a class name: plain | lower | sun397 ("/a/apartment_building/outdoor" ->
    # "outdoor apartment_building") | year_first ("Ram C/V Cargo Van Minivan 2012" -> "2012 Ram C/V ...")
    # | numeric (raw labels are 1-based ids; names come from a class list) | wnid (names from classnames.txt)
    style: str = "plain"
    # The canonical order as a rule on raw names: sorted | lower (case-insensitive) | numeric | None (only the
    # dataset's metadata knows it: a CoOp split, devkit files, or a class list the user points at).
    order: str | None = "sorted"
    carve: tuple[float, float, float] = (0.5, 0.2, 0.3)  # per-class fractions where a copy ships no split at all
    val_fraction: float = 0.2  # of train, per class, where a copy ships train/test but no val (CoOp's 20%)


_ALL = (
    DatasetInfo(
        "imagenet", "ImageNet-1k", 1000, (1_281_167, 0, 50_000), 732, "", "a photo of a {}.",
        ("imagenet", "ImageNet", "imagenet-1k", "ILSVRC2012"), "images", None,
        style="wnid", order="sorted", val_fraction=0.01),  # 1% of train (~12 a class) to select on
    DatasetInfo(
        "caltech101", "Caltech-101", 100, (4128, 1649, 2465), 16, "", "a photo of a {}.",
        ("caltech-101", "caltech101", "Caltech101"), "101_ObjectCategories", "split_zhou_Caltech101.json",
        renames={"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"},
        drop=("BACKGROUND_Google", "Faces_easy")),
    DatasetInfo(
        "dtd", "Describable Textures", 47, (2820, 1128, 1692), 60, "texture ", "{} texture.",
        ("dtd", "DTD"), "images", "split_zhou_DescribableTextures.json"),
    DatasetInfo(
        "eurosat", "EuroSAT", 10, (13_500, 5400, 8100), 1000, "satellite ", "a centered satellite photo of {}.",
        ("eurosat", "EuroSAT", "EuroSAT_RGB"), "2750", "split_zhou_EuroSAT.json",
        renames={"AnnualCrop": "Annual Crop Land", "HerbaceousVegetation": "Herbaceous Vegetation Land",
                 "Highway": "Highway or Road", "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
                 "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings",
                 "SeaLake": "Sea or Lake"}),
    DatasetInfo(
        "fgvc_aircraft", "FGVC-Aircraft (variants)", 100, (3334, 3333, 3333), 33, "aircraft ",
        "a photo of a {}, a type of aircraft.",
        ("fgvc_aircraft", "fgvc-aircraft-2013b", "fgvc-aircraft", "FGVCAircraft"), "images", None),
    DatasetInfo(
        "pets", "Oxford-IIIT Pets", 37, (2944, 736, 3669), 74, "pet ", "a photo of a {}, a type of pet.",
        ("oxford_pets", "oxford-iiit-pet", "OxfordPets", "pets"), "images", "split_zhou_OxfordPets.json",
        style="lower", order="lower"),
    DatasetInfo(
        "flowers102", "Oxford Flowers-102", 102, (4093, 1633, 2463), 20, "flower ",
        "a photo of a {}, a type of flower.",
        ("oxford_flowers", "flowers-102", "flowers102", "OxfordFlowers"), "jpg", "split_zhou_OxfordFlowers.json",
        style="numeric", order="numeric"),
    DatasetInfo(
        "food101", "Food-101", 101, (50_500, 20_200, 30_300), 500, "food ", "a photo of {}, a type of food.",
        ("food-101", "food101", "Food101"), "images", "split_zhou_Food101.json"),
    DatasetInfo(
        "sun397", "SUN397", 397, (15_880, 3970, 19_850), 40, "scene ", "a photo of a {}.",
        ("sun397", "SUN397"), "SUN397", "split_zhou_SUN397.json", style="sun397"),
    DatasetInfo(
        "cars", "Stanford Cars", 196, (6509, 1635, 8041), 19, "car ", "a photo of a {}.",
        ("stanford_cars", "StanfordCars", "cars"), "", "split_zhou_StanfordCars.json",
        style="year_first", order=None),
)

DATASETS: dict[str, DatasetInfo] = {d.key: d for d in _ALL}


def get(key: str) -> DatasetInfo:
    if key not in DATASETS:
        raise UsageError(f"unknown paper dataset {key!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


_YEAR = re.compile(r"^(19|20)\d\d$")


def class_name(info: DatasetInfo, raw: str) -> str:
    """The class name CoOp uses for a raw folder / metadata name; a name already in that form is unchanged."""
    raw = unquote_dirname(raw)
    if raw in info.renames:
        return info.renames[raw]
    if info.style == "lower":
        return raw.lower()
    if info.style == "sun397" and "/" in raw:
        parts = [p for p in raw.strip("/").split("/") if p]
        if len(parts) > 1 and len(parts[0]) == 1:  # "/a/abbey": the first level is the initial letter
            parts = parts[1:]
        return " ".join(reversed(parts))
    if info.style == "year_first":
        words = raw.split(" ")
        if len(words) > 1 and _YEAR.match(words[-1]):
            return " ".join([words[-1]] + words[:-1])
    return raw


def order_key(info: DatasetInfo, name: str) -> tuple | None:
    """The sort key of a class name under the dataset's canonical order rule (None: no rule)."""
    if info.order is None:
        return None
    raw = {v: k for k, v in info.renames.items()}.get(name, name)
    if info.style == "sun397":
        raw = "/".join(reversed(raw.split(" ")))
    if info.order == "lower":
        return (raw.lower(),)
    if info.order == "numeric":
        return (int(raw),) if raw.isdigit() else None
    return (raw,)


def quote_dirname(name: str) -> str:
    """A class name as one safe folder name: "/" can never split it into a path."""
    return name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")


def unquote_dirname(name: str) -> str:
    return name.replace("%2F", "/").replace("%2f", "/").replace("%5C", "\\").replace("%5c", "\\").replace("%25", "%")


def normalized(name: str) -> str:
    """A loose form for matching spellings: case, spaces, underscores, dashes and slashes do not count."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())
