"""Datasets: UCF-101 split files, folder-per-class datasets, cached-feature folders, class subsets.

Everything here works on names and paths only: no clip is opened or decoded, so listing a dataset of
13,320 clips costs one directory scan per class folder.

Three layouts are understood by `load_dataset`:
- 'ucf101':   <data>/<Class>/<clip>.<ext> (or <clip>/ frame folders) plus the official split files
              (classInd.txt, trainlist0N.txt, testlist0N.txt), matched to files by stem.
- 'folders':  <data>/<Class>/... without split files; a seeded, group-aware split makes the val set.
- 'features': <features>/[<Class>/]<clip_stem>.npy standing in for the clips, split like either above.
"""

from __future__ import annotations

import difflib
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Callable, Iterable

from arlib.errors import DatasetError

# Same constant as arlib/video.py (written concurrently); to be imported from there later.
VIDEO_EXTENSIONS = frozenset({'.mp4', '.avi', '.mov', '.mkv', '.webm', '.gif', '.m4v', '.mpg', '.mpeg',
                              '.wmv', '.flv', '.3gp', '.ogv'})
IMAGE_EXTENSIONS = frozenset({'.jpg', '.jpeg', '.png', '.bmp'})
FEATURE_EXTENSION = '.npy'

SPLITS_DIR_NAME = 'ucfTrainTestlist'
CLASS_INDEX_NAME = 'classInd.txt'
_UCF_GROUP = re.compile(r'_g(\d+)_c\d+')


@dataclass(frozen=True)
class Clip:
    path: str          # absolute path of the video file, frame folder, or .npy features file
    label: int         # index into DatasetSplit.classes
    class_name: str
    stem: str          # file stem, e.g. 'v_ApplyEyeMakeup_g08_c01'
    group: str         # 'g08' for UCF-101 names, else the stem itself (see group_of)
    kind: str          # 'video' | 'frames' | 'features'


@dataclass
class DatasetSplit:
    classes: list[str]
    train: list[Clip]
    test: list[Clip]          # the official test list, or the val part of a seeded group split
    missing: list[str]        # split-file entries (as written there) with no file on disk
    layout: str               # 'ucf101' | 'folders' | 'features'
    root: str
    description: str

    def summary(self) -> dict:
        per_class = {name: {'train': 0, 'test': 0} for name in self.classes}
        for part, clips in (('train', self.train), ('test', self.test)):
            for clip in clips:
                per_class[clip.class_name][part] += 1
        return {'classes': list(self.classes), 'per_class': per_class, 'train': len(self.train),
                'test': len(self.test), 'missing': len(self.missing), 'layout': self.layout,
                'root': self.root}


# ----------------------------------------------------------------------------------------- split files

def _read_lines(path, what: str) -> list[str]:
    """Lines of a small text file with BOM and CRLF/LF handled; unreadable -> DatasetError."""
    path = Path(path)
    if not path.is_file():
        problem = 'is a folder, not a file' if path.is_dir() else 'not found'
        raise DatasetError(f"{what} {path} {problem}: check the path (the UCF-101 split files live in "
                           f"a '{SPLITS_DIR_NAME}' folder).")
    try:
        text = path.read_bytes().decode('utf-8-sig')
    except UnicodeDecodeError:
        raise DatasetError(f"{what} {path} is not UTF-8 text: point to the original split file.") from None
    except OSError as exc:
        raise DatasetError(f"{what} {path} cannot be read ({exc.strerror}): check its permissions.") from None
    return text.splitlines()


def _class_numbers(path) -> dict[str, int]:
    """classInd.txt as {name: N}; numbers and names must be unique, gaps are allowed."""
    numbers: dict[str, int] = {}
    seen: set[int] = set()
    for line_no, line in enumerate(_read_lines(path, 'class index file'), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise DatasetError(f"{path} line {line_no} is not 'N ClassName' (got {line.strip()!r}): "
                               "fix or restore the class index file.")
        number, name = int(parts[0]), parts[1].strip()
        if number in seen or name in numbers:
            raise DatasetError(f"{path} line {line_no} repeats class number or name {line.strip()!r}: "
                               "each class must appear once.")
        seen.add(number)
        numbers[name] = number
    if not numbers:
        raise DatasetError(f"{path} lists no classes: restore the class index file ('1 ApplyEyeMakeup' ...).")
    return numbers


def read_class_index(path) -> list[str]:
    """Class names of a classInd.txt, ordered by their number N (the file may list them in any order)."""
    return _by_number(_class_numbers(path))


def _by_number(numbers: dict[str, int]) -> list[str]:
    return sorted(numbers, key=numbers.__getitem__)


def read_split_list(path) -> list[tuple[str, str, int | None]]:
    """(class folder, file name, 1-based label or None) for each 'Class/v_x.avi [N]' line."""
    entries = []
    for line_no, line in enumerate(_read_lines(path, 'split list'), start=1):
        if not line.strip():
            continue
        parts = line.split()
        rel = parts[0].replace('\\', '/').split('/')
        label_ok = len(parts) == 1 or (len(parts) == 2 and parts[1].isdigit() and int(parts[1]) >= 1)
        if len(rel) != 2 or not all(rel) or not label_ok:
            raise DatasetError(f"{path} line {line_no} is not 'Class/clip.avi [N]' (got {line.strip()!r}): "
                               "fix or restore the split file.")
        entries.append((rel[0], rel[1], int(parts[1]) if len(parts) == 2 else None))
    return entries


def find_splits_dir(data_root) -> Path | None:
    """The split-file folder inside or next to `data_root` (one holding classInd.txt), else None."""
    if data_root is None:
        return None
    root = Path(data_root).expanduser()
    for candidate in (root / SPLITS_DIR_NAME, root.parent / SPLITS_DIR_NAME):
        if (candidate / CLASS_INDEX_NAME).is_file():
            return candidate.resolve()
    return None


# ------------------------------------------------------------------------------------- class selection

def _suggest(name: str, choices: list[str]) -> list[str]:
    """Close matches, case differences first (the usual slip: 'archery' for 'Archery')."""
    same_but_case = [c for c in choices if c.lower() == name.lower()]
    lowered = {c.lower(): c for c in choices}
    fuzzy = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
    return list(dict.fromkeys(same_but_case + fuzzy))


def _names_in_spec(spec) -> list[str]:
    names = spec.split(',') if isinstance(spec, str) else [str(s) for s in spec]
    return list(dict.fromkeys(n.strip() for n in names if n.strip()))


def select_classes(all_classes: list[str], spec, source: str = 'the class list') -> list[str]:
    """Resolve a class selection: None/'all' -> all; 9 or '9' -> the first 9; 'A,B' or ['A', 'B'] -> those.

    Selected names keep the order of `all_classes` so label ids do not depend on how the user typed them.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ('', 'all')):
        return list(all_classes)
    if isinstance(spec, bool):  # bool is an int subclass; True would mean "1 class" by accident
        raise DatasetError(f"Class selection {spec!r} is not understood: give a count like 9 or names like "
                           "'Archery,BabyCrawling'.")
    if isinstance(spec, Integral) or (isinstance(spec, str) and spec.strip().lstrip('-').isdigit()):
        count = int(spec)
        if not 1 <= count <= len(all_classes):
            raise DatasetError(f"Cannot select the first {count} classes: {source} has {len(all_classes)}; "
                               f"choose a count from 1 to {len(all_classes)}.")
        return list(all_classes[:count])
    if not isinstance(spec, (str, list, tuple, set, frozenset)):
        raise DatasetError(f"Class selection {spec!r} is not understood: give a count like 9 or names like "
                           "'Archery,BabyCrawling'.")
    wanted = _names_in_spec(spec)
    if not wanted:
        raise DatasetError(f"Class selection {spec!r} names no class: give a count like 9 or names like "
                           "'Archery,BabyCrawling'.")
    unknown = [n for n in wanted if n not in all_classes]
    if unknown:
        hints = []
        for name in unknown:
            close = _suggest(name, all_classes)
            hints.append(f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ''))
        raise DatasetError(f"Unknown class name(s) {'; '.join(hints)} in {source}: names are case-sensitive; "
                           f"available are {_preview(all_classes)}.")
    chosen = set(wanted)
    return [c for c in all_classes if c in chosen]


def _preview(names: list[str], limit: int = 8) -> str:
    shown = ', '.join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else '')


# ------------------------------------------------------------------------------------------- grouping

def group_of(stem: str) -> str:
    """Group key of a clip: 'g08' for UCF-101 names (v_Class_g08_c01), else the stem itself.

    UCF-101's official splits keep a group number wholly in train or test across all classes, so the
    bare group number (not class + group) is the key; clips from other sources are their own group.
    """
    match = _UCF_GROUP.search(stem)
    return f'g{int(match.group(1)):02d}' if match else stem


def _clips_by_group(clips: list[Clip]) -> dict[str, list[Clip]]:
    groups: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        groups[clip.group].append(clip)
    return groups


def _seeded_group_order(groups: Iterable[str], seed: int) -> list[str]:
    order = sorted(groups)  # sort first so the result does not depend on the input order
    random.Random(seed).shuffle(order)
    return order


def group_split(clips, val_fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """Seeded (train, val) split moving whole groups to val until each class has ~val_fraction there.

    Groups are visited in a seeded order; a group goes to val when that brings the per-class val
    fractions closer to the target and no class loses its last training clip (so a class always keeps
    at least one train clip; a class with a single group stays wholly in train).
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, Real) or not 0 <= val_fraction < 1:
        raise DatasetError(f"Validation fraction {val_fraction!r} is out of range: use a number in [0, 1), "
                           "e.g. 0.2.")
    clips = list(clips)
    class_total = Counter(c.label for c in clips)
    by_group = _clips_by_group(clips)
    in_val: Counter = Counter()
    val_groups: set[str] = set()

    def error_change(add: Counter) -> float:  # change of sum_c |val_c / n_c - val_fraction|
        return sum(abs((in_val[c] + n) / class_total[c] - val_fraction)
                   - abs(in_val[c] / class_total[c] - val_fraction) for c, n in add.items())

    for group in _seeded_group_order(by_group, seed):
        add = Counter(c.label for c in by_group[group])
        takes_last_train = any(in_val[c] + n >= class_total[c] for c, n in add.items())
        if not takes_last_train and error_change(add) < -1e-12:
            val_groups.add(group)
            in_val.update(add)
    return ([c for c in clips if c.group not in val_groups], [c for c in clips if c.group in val_groups])


def group_kfold(clips, k: int, seed: int) -> list[tuple[list[Clip], list[Clip]]]:
    """k (train, val) folds for cross-validation; a group's clips share one fold, fold sizes balanced.

    Groups are placed largest first (seeded order among equal sizes) into the currently smallest fold.
    """
    clips = list(clips)
    by_group = _clips_by_group(clips)
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 2:
        raise DatasetError(f"Cross-validation needs k >= 2 folds (got {k!r}): choose k from 2 to the number "
                           "of clip groups.")
    if k > len(by_group):
        raise DatasetError(f"Cannot make {k} folds from {len(by_group)} clip groups: lower k to at most "
                           f"{len(by_group)} or add clips.")
    order = sorted(_seeded_group_order(by_group, seed), key=lambda g: -len(by_group[g]))  # stable sort
    fold_of: dict[str, int] = {}
    sizes = [0] * k
    for group in order:
        fold = sizes.index(min(sizes))
        fold_of[group] = fold
        sizes[fold] += len(by_group[group])
    return [([c for c in clips if fold_of[c.group] != f], [c for c in clips if fold_of[c.group] == f])
            for f in range(k)]


# ------------------------------------------------------------------------------------- scanning disk

# An item found on disk: (absolute path, kind).
Item = tuple[str, str]


def _visible(name: str) -> bool:
    """Skip hidden files and unfinished '.partial' outputs of other tools."""
    return not name.startswith('.') and not name.endswith('.partial')


def _is_frame_dir(path: str) -> bool:
    """A clip frame folder holds at least one image; stop scanning at the first one."""
    try:
        with os.scandir(path) as it:
            return any(e.is_file() and _visible(e.name) and os.path.splitext(e.name)[1].lower()
                       in IMAGE_EXTENSIONS for e in it)
    except OSError:
        return False


def _video_item(entry: os.DirEntry) -> str | None:
    if entry.is_file():
        return 'video' if os.path.splitext(entry.name)[1].lower() in VIDEO_EXTENSIONS else None
    return 'frames' if entry.is_dir() and _is_frame_dir(entry.path) else None


def _feature_item(entry: os.DirEntry) -> str | None:
    return 'features' if entry.is_file() and entry.name.lower().endswith(FEATURE_EXTENSION) else None


_KIND_PREFERENCE = {'video': 0, 'frames': 1, 'features': 2}


def _scan_items(folder: Path, classify: Callable[[os.DirEntry], str | None]) -> dict[str, Item]:
    """{stem: (path, kind)} of one folder. On a stem clash (x.mp4 and x/ frames) the video wins, then
    the first name in sorted order, so the choice is deterministic."""
    found: dict[str, Item] = {}
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if _visible(e.name)), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        kind = classify(entry)
        if kind is None:
            continue
        stem = entry.name if kind == 'frames' else os.path.splitext(entry.name)[0]
        if stem not in found or _KIND_PREFERENCE[kind] < _KIND_PREFERENCE[found[stem][1]]:
            found[stem] = (os.path.join(str(folder), entry.name), kind)
    return found


def _subfolders(root: Path) -> list[Path]:
    try:
        with os.scandir(root) as it:
            return sorted(Path(e.path) for e in it if e.is_dir() and _visible(e.name))
    except OSError as exc:
        raise DatasetError(f"Folder {root} cannot be listed ({exc.strerror}): check its permissions.") from None


def _checked_dir(path, what: str, fix: str) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{what} {root} does not exist: {fix}.")
    if not root.is_dir():
        raise DatasetError(f"{what} {root} is not a folder: {fix}.")
    return root.resolve()


# ------------------------------------------------------------------------------------- building splits

def _make_clip(item: Item, label: int, class_name: str, stem: str) -> Clip:
    return Clip(path=item[0], label=label, class_name=class_name, stem=stem, group=group_of(stem),
                kind=item[1])


def _split_files(splits_dir: Path, split: int) -> tuple[Path, Path, Path]:
    files = (splits_dir / CLASS_INDEX_NAME, splits_dir / f'trainlist0{split}.txt',
             splits_dir / f'testlist0{split}.txt')
    for f in files:
        if not f.is_file():
            raise DatasetError(f"Split file {f.name} is missing from {splits_dir}: restore the official "
                               f"'{SPLITS_DIR_NAME}' files or pass another splits folder.")
    return files


def _check_label(list_path: Path, cls: str, label: int | None, numbers: dict[str, int], index_path: Path):
    if label is not None and label != numbers[cls]:
        raise DatasetError(f"{list_path.name} gives class {cls} label {label} but {index_path.name} numbers "
                           f"it {numbers[cls]}: use split files from the same {SPLITS_DIR_NAME} folder.")


def _clips_from_list(list_path: Path, classes: list[str], numbers: dict[str, int], index_path: Path,
                     lookup: Callable[[str, str], Item | None], missing: list[str]) -> list[Clip]:
    """Clips of the selected classes named in one split list, found by stem via `lookup`."""
    label_of = {name: i for i, name in enumerate(classes)}
    clips = []
    for cls, file_name, label in read_split_list(list_path):
        if cls not in label_of:
            continue
        _check_label(list_path, cls, label, numbers, index_path)
        stem = os.path.splitext(file_name)[0]  # lists say .avi; files are often .mp4 or frame folders
        item = lookup(cls, stem)
        if item is None:
            missing.append(f'{cls}/{file_name}')
        else:
            clips.append(_make_clip(item, label_of[cls], cls, stem))
    return clips


def _video_lookup(root: Path) -> Callable[[str, str], Item | None]:
    """(class folder, stem) -> item, scanning each class folder once on first use."""
    cache: dict[str, dict[str, Item]] = {}

    def lookup(cls: str, stem: str) -> Item | None:
        if cls not in cache:
            cache[cls] = _scan_items(root / cls, _video_item)
        return cache[cls].get(stem)
    return lookup


def _feature_index(root: Path) -> dict[str, Item]:
    """All <stem>.npy directly in `root` or one class folder down, keyed by stem."""
    index: dict[str, Item] = {}
    for folder in [root] + _subfolders(root):
        for stem, item in _scan_items(folder, _feature_item).items():
            index.setdefault(stem, item)
    return index


def _empty_class_note(classes: list[str], clips: list[Clip]) -> str:
    present = {c.class_name for c in clips}
    empty = [c for c in classes if c not in present]
    return f"; no clips on disk for {_preview(empty)}" if empty else ''


_KIND_WORDS = {'video': 'video files', 'frames': 'frame folders', 'features': 'feature files'}


def _kinds_note(clips: list[Clip]) -> str:
    kinds = {c.kind for c in clips}
    return '' if kinds == {'video'} else f"; as {' + '.join(_KIND_WORDS[k] for k in sorted(kinds))}"


def _from_split_files(root: Path, splits_dir: Path, split: int, spec, layout: str,
                      lookup: Callable[[str, str], Item | None]) -> DatasetSplit:
    index_path, train_path, test_path = _split_files(splits_dir, split)
    numbers = _class_numbers(index_path)
    classes = select_classes(_by_number(numbers), spec, source=str(index_path))
    missing: list[str] = []
    train = _clips_from_list(train_path, classes, numbers, index_path, lookup, missing)
    test = _clips_from_list(test_path, classes, numbers, index_path, lookup, missing)
    if not train:
        what = 'feature files (<clip_stem>.npy)' if layout == 'features' else 'clips'
        nested = root / 'UCF-101'  # the usual slip: pointing at the folder above the class folders
        hint = f" (did you mean {nested}?)" if layout != 'features' and nested.is_dir() else ''
        raise DatasetError(f"None of the {len(classes)} selected classes has training {what} under {root}"
                           f"{hint} that match {train_path.name}: check the folder holds <Class>/<clip> "
                           "entries named as in the split file, and the class selection.")
    absent = f" ({len(missing)} listed clips absent)" if missing else ''
    description = (f"UCF-101 split {split}, {len(classes)} classes: {len(train)} train / {len(test)} test "
                   f"clips on disk{absent}{_kinds_note(train + test)}{_empty_class_note(classes, train + test)}")
    return DatasetSplit(classes=classes, train=train, test=test, missing=missing, layout=layout,
                        root=str(root), description=description)


def _from_class_folders(root: Path, classify: Callable[[os.DirEntry], str | None], spec,
                        val_fraction: float, seed: int, layout: str) -> DatasetSplit:
    """Folder-per-class dataset without split files: sorted class folders, seeded group split."""
    folders = {f.name: _scan_items(f, classify) for f in _subfolders(root)}
    found = [name for name, items in folders.items() if items]
    if not found:
        what = 'feature files (.npy)' if layout == 'features' else 'clips (videos or frame folders)'
        raise DatasetError(f"No class folders with {what} under {root} and no '{SPLITS_DIR_NAME}' split "
                           f"files found: put each class's clips in {root}/<ClassName>/ or pass splits=.")
    classes = select_classes(found, spec, source=f"the class folders of {root}")
    clips = [_make_clip(item, label, name, stem)
             for label, name in enumerate(classes) for stem, item in sorted(folders[name].items())]
    train, val = group_split(clips, val_fraction, seed)
    ignored = [name for name, items in folders.items() if not items]
    note = f"; ignored folders without clips: {_preview(ignored)}" if ignored else ''
    title = 'Feature folders per class' if layout == 'features' else 'Folder-per-class dataset'
    description = (f"{title}, {len(classes)} classes: {len(train)} train / {len(val)} val clips (seeded "
                   f"group split, {val_fraction:.0%} val, seed {seed}){_kinds_note(clips)}{note}")
    return DatasetSplit(classes=classes, train=train, test=val, missing=[], layout=layout, root=str(root),
                        description=description)


def _check_split_number(split) -> int:
    if isinstance(split, bool) or str(split).strip() not in ('1', '2', '3'):
        raise DatasetError(f"UCF-101 split {split!r} does not exist: choose split 1, 2 or 3.")
    return int(split)


def _given_splits_dir(splits) -> Path:
    return _checked_dir(splits, 'Splits folder', f"pass the '{SPLITS_DIR_NAME}' folder holding "
                                                 f"{CLASS_INDEX_NAME}, trainlist0N.txt and testlist0N.txt")


def load_dataset(data=None, splits=None, split: int = 1, classes=None, features=None,
                 val_fraction: float = 0.2, seed: int = 0) -> DatasetSplit:
    """List a dataset's clips (never opening them) and split them into train and test/val.

    data:     folder with <Class>/<clip>.<ext> videos or <Class>/<clip>/ frame folders.
    splits:   folder with classInd.txt, trainlist0N.txt, testlist0N.txt; default: found next to or
              inside `data` (or `features`). Without split files, a seeded group split is made.
    features: folder of <clip_stem>.npy files (flat or in <Class>/ folders) replacing the clips.
    classes:  None (all), a count (9 or '9': the first 9 in class order) or names ('A,B' or a list).
    """
    split = _check_split_number(split)
    if data is None and features is None:
        raise DatasetError("No dataset given: pass data= (a folder of class folders) or features= "
                           "(a folder of .npy feature files).")
    data_root = None if data is None else _checked_dir(
        data, 'Dataset folder', 'pass the folder that holds one subfolder per class')
    splits_dir = _given_splits_dir(splits) if splits is not None else find_splits_dir(data_root)

    if features is None:
        if splits_dir is not None:
            return _from_split_files(data_root, splits_dir, split, classes, 'ucf101', _video_lookup(data_root))
        return _from_class_folders(data_root, _video_item, classes, val_fraction, seed, 'folders')

    feat_root = _checked_dir(features, 'Features folder', 'pass the folder of <clip_stem>.npy files')
    splits_dir = splits_dir or find_splits_dir(feat_root)
    if splits_dir is None:
        return _from_class_folders(feat_root, _feature_item, classes, val_fraction, seed, 'features')
    index = _feature_index(feat_root)
    if not index:
        raise DatasetError(f"No .npy feature files found in {feat_root} or its class folders: extract "
                           "features first or pass the right features folder.")
    return _from_split_files(feat_root, splits_dir, split, classes, 'features',
                             lambda _cls, stem: index.get(stem))
