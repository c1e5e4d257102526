"""Tests for arlib.datasets on small fake trees (empty clip files: nothing is ever decoded) and on the
real ucf101-mini copy when present."""

import json
from pathlib import Path

import numpy as np
import pytest

from arlib.datasets import (Clip, DatasetSplit, find_splits_dir, group_kfold, group_of, group_split,
                            load_dataset, read_class_index, read_split_list, select_classes)
from arlib.errors import DatasetError

CLASSES = ['Alpha', 'Beta', 'Gamma']
TRAIN_GROUPS, TEST_GROUPS, CLIPS_PER_GROUP = (3, 4, 5), (1, 2), 2
REAL = Path(__file__).resolve().parents[1].parent / 'shared' / 'ucf101-mini'


# ------------------------------------------------------------------------------------------- helpers

def write_crlf(path: Path, lines, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b'\xef\xbb\xbf' if bom else b'') + ('\r\n'.join(lines) + '\r\n').encode())
    return path


def ucf(cls: str, group: int, clip: int) -> str:
    return f'v_{cls}_g{group:02d}_c{clip:02d}'


def listed(cls: str, groups) -> list[str]:
    return [ucf(cls, g, c) for g in groups for c in range(1, CLIPS_PER_GROUP + 1)]


def make_splits(folder: Path, splits=(1,)) -> Path:
    """Official-style split files (CRLF, .avi names) for CLASSES; classInd deliberately out of order."""
    write_crlf(folder / 'classInd.txt', ['2 Beta', '1 Alpha', '', '3 Gamma'])
    for n in splits:
        write_crlf(folder / f'trainlist0{n}.txt',
                   [f'{c}/{s}.avi {i}' for i, c in enumerate(CLASSES, 1) for s in listed(c, TRAIN_GROUPS)])
        write_crlf(folder / f'testlist0{n}.txt',
                   [f'{c}/{s}.avi' for c in CLASSES for s in listed(c, TEST_GROUPS)])
    return folder


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


@pytest.fixture
def ucf_tree(tmp_path):
    """UCF-101/<Class>/ videos next to ucfTrainTestlist/: Alpha has all train clips (mixed .mp4/.avi)
    and one test clip, Beta two train clips, Gamma nothing; plus decoys that must be ignored."""
    root = tmp_path / 'UCF-101'
    for i, stem in enumerate(listed('Alpha', TRAIN_GROUPS)):
        touch(root / 'Alpha' / (stem + ('.avi' if i % 3 == 0 else '.mp4')))
    touch(root / 'Alpha' / (ucf('Alpha', 1, 1) + '.mp4'))
    for stem in listed('Beta', TRAIN_GROUPS)[:2]:
        touch(root / 'Beta' / (stem + '.MP4'))
    (root / 'Gamma').mkdir()
    touch(root / 'Alpha' / '.hidden.mp4')
    touch(root / 'Alpha' / 'notes.txt')
    touch(root / 'Beta' / (listed('Beta', TRAIN_GROUPS)[2] + '.partial') / '000001.jpg')
    make_splits(tmp_path / 'ucfTrainTestlist', splits=(1, 2))
    return root


def clip_dataset(root: Path, classes: int, groups: int, per_group: int) -> Path:
    """Folder-per-class tree of UCF-named empty .mp4 files, no split files."""
    for k in range(classes):
        for g in range(1, groups + 1):
            for c in range(1, per_group + 1):
                touch(root / f'Class{k}' / f'{ucf(f"Class{k}", g, c)}.mp4')
    return root


def fake_clips(spec: dict[str, list[str]]) -> list[Clip]:
    """Clips from {class_name: [stem, ...]} without touching disk."""
    return [Clip(path=f'/x/{s}', label=i, class_name=name, stem=s, group=group_of(s), kind='video')
            for i, (name, stems) in enumerate(spec.items()) for s in stems]


# --------------------------------------------------------------------------------------- split files

def test_read_class_index_orders_by_number_and_tolerates_bom_crlf_blank_lines(tmp_path):
    path = write_crlf(tmp_path / 'classInd.txt', ['', '3 Gamma', '1 Alpha', '   ', '2 Beta', ''], bom=True)
    assert read_class_index(path) == ['Alpha', 'Beta', 'Gamma']
    lf = tmp_path / 'lf.txt'
    lf.write_text('1 Alpha\n2 Beta\n')
    assert read_class_index(lf) == ['Alpha', 'Beta']


@pytest.mark.parametrize('lines, line_no', [
    (['1 Alpha', '2 Beta', 'Gamma'], 3),
    (['1 Alpha', 'x Beta'], 2),
    (['0 Alpha'], 1),
    (['1 Alpha', '1 Beta'], 2),            # number repeated
    (['1 Alpha', '2 Alpha'], 2),           # name repeated
    (['Alpha/v_Alpha_g01_c01.avi 1'], 1),  # a trainlist passed as classInd
])
def test_read_class_index_malformed_names_file_and_line(tmp_path, lines, line_no):
    path = write_crlf(tmp_path / 'classInd.txt', lines)
    with pytest.raises(DatasetError, match=rf'classInd\.txt line {line_no}\b'):
        read_class_index(path)


def test_read_class_index_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match='not found'):
        read_class_index(tmp_path / 'nope.txt')
    (tmp_path / 'bin.txt').write_bytes(b'\xff\xfe\x00\x81')
    with pytest.raises(DatasetError, match='not UTF-8'):
        read_class_index(tmp_path / 'bin.txt')
    write_crlf(tmp_path / 'empty.txt', [''])
    with pytest.raises(DatasetError, match='lists no classes'):
        read_class_index(tmp_path / 'empty.txt')
    with pytest.raises(DatasetError, match='is a folder, not a file'):
        read_class_index(tmp_path)


def test_read_split_list_with_and_without_labels(tmp_path):
    train = write_crlf(tmp_path / 'trainlist01.txt', ['Alpha/v_Alpha_g01_c01.avi 1', '', 'Beta/v_Beta_g02_c03.avi 2'])
    assert read_split_list(train) == [('Alpha', 'v_Alpha_g01_c01.avi', 1), ('Beta', 'v_Beta_g02_c03.avi', 2)]
    test = write_crlf(tmp_path / 'testlist01.txt', ['Alpha/v_Alpha_g01_c01.avi'], bom=True)
    assert read_split_list(test) == [('Alpha', 'v_Alpha_g01_c01.avi', None)]


@pytest.mark.parametrize('bad', ['v_Alpha_g01_c01.avi 1', 'Alpha/v.avi 1 2', 'Alpha/v.avi x', 'Alpha/v.avi 0',
                                 'A/B/v.avi', '/v.avi'])
def test_read_split_list_malformed_names_file_and_line(tmp_path, bad):
    path = write_crlf(tmp_path / 'trainlist01.txt', ['Alpha/v_Alpha_g01_c01.avi 1', bad])
    with pytest.raises(DatasetError, match=r'trainlist01\.txt line 2\b'):
        read_split_list(path)


def test_find_splits_dir_inside_next_to_or_none(tmp_path):
    assert find_splits_dir(None) is None
    assert find_splits_dir(tmp_path / 'absent') is None
    data = tmp_path / 'UCF-101'
    data.mkdir()
    assert find_splits_dir(data) is None
    make_splits(tmp_path / 'ucfTrainTestlist')
    assert find_splits_dir(data) == (tmp_path / 'ucfTrainTestlist').resolve()
    make_splits(data / 'ucfTrainTestlist')
    assert find_splits_dir(data) == (data / 'ucfTrainTestlist').resolve()  # inside wins


# ---------------------------------------------------------------------------------- class selection

ALL = ['ApplyEyeMakeup', 'ApplyLipstick', 'Archery', 'BabyCrawling', 'BalanceBeam']


@pytest.mark.parametrize('spec, expected', [
    (None, ALL), ('all', ALL), ('', ALL), (2, ALL[:2]), ('2', ALL[:2]), (' 5 ', ALL),
    ('BabyCrawling,Archery', ['Archery', 'BabyCrawling']),      # classInd order, not the user's
    ('Archery, BabyCrawling, Archery', ['Archery', 'BabyCrawling']),
    (['BalanceBeam', 'ApplyLipstick'], ['ApplyLipstick', 'BalanceBeam']),
    (np.int64(3), ALL[:3]),
])
def test_select_classes(spec, expected):
    assert select_classes(ALL, spec) == expected


@pytest.mark.parametrize('spec, message', [
    ('archery', r"'archery' \(did you mean 'Archery'\?\)"),
    ('Archery,BabyCrawl', r"'BabyCrawl' \(did you mean 'BabyCrawling'\?\)"),
    ('Zzzz', r"Unknown class name\(s\) 'Zzzz' in .*available are ApplyEyeMakeup"),
    (0, 'from 1 to 5'), ('0', 'from 1 to 5'), (6, 'from 1 to 5'), (-1, 'from 1 to 5'),
    (True, 'not understood'), (2.5, 'not understood'), (',', 'names no class'),
])
def test_select_classes_errors_are_helpful(spec, message):
    with pytest.raises(DatasetError, match=message):
        select_classes(ALL, spec)


# ----------------------------------------------------------------------------------------- grouping

def test_group_of():
    assert group_of('v_ApplyEyeMakeup_g08_c01') == 'g08'
    assert group_of('v_HandStandPushups_g8_c1') == 'g08'
    assert group_of('my_clip') == 'my_clip'


def test_group_split_keeps_groups_whole_is_seeded_and_near_fraction():
    clips = fake_clips({f'C{k}': [ucf(f'C{k}', g, c) for g in range(1, 11) for c in range(1, 4)] for k in range(4)})
    train, val = group_split(clips, 0.2, seed=0)
    assert {c.group for c in train}.isdisjoint({c.group for c in val})
    assert sorted(train + val, key=lambda c: c.path) == sorted(clips, key=lambda c: c.path)
    for k in range(4):  # each class: 30 clips in 10 groups of 3 -> exactly 2 groups (6 clips) in val
        assert sum(c.label == k for c in val) == 6
    assert group_split(clips, 0.2, seed=0) == (train, val)
    assert group_split(list(reversed(clips)), 0.2, seed=0)[1] == list(reversed(val))  # input order free
    assert any(group_split(clips, 0.2, seed=s)[1] != val for s in range(1, 6))


def test_group_split_every_class_keeps_a_train_clip():
    clips = fake_clips({'Two': ['v_Two_g01_c01', 'v_Two_g02_c01'], 'One': ['v_One_g05_c01', 'v_One_g05_c02'],
                        'Free': [f'clip{i}' for i in range(10)]})
    for seed in range(20):
        train, val = group_split(clips, 0.9, seed)
        assert {c.class_name for c in train} == {'Two', 'One', 'Free'}
        assert 'One' not in {c.class_name for c in val}   # a single group cannot be split
    assert group_split(clips, 0.0, 0) == (clips, [])
    assert group_split(clips, np.float32(0.5), 0) == group_split(clips, 0.5, 0)
    assert group_split([], 0.2, 0) == ([], [])


@pytest.mark.parametrize('fraction', [-0.1, 1.0, 1.5, '0.2', None])
def test_group_split_rejects_bad_fraction(fraction):
    with pytest.raises(DatasetError, match='Validation fraction'):
        group_split(fake_clips({'A': ['a', 'b']}), fraction, 0)


def test_group_kfold_disjoint_covering_balanced():
    clips = fake_clips({'A': [ucf('A', g, c) for g in range(1, 8) for c in range(1, 1 + g % 3 + 1)],
                        'B': [f'b{i}' for i in range(9)]})
    folds = group_kfold(clips, 4, seed=1)
    assert len(folds) == 4
    vals = [val for _, val in folds]
    assert sorted(c.path for v in vals for c in v) == sorted(c.path for c in clips)  # each clip once
    for train, val in folds:
        assert {c.group for c in train}.isdisjoint({c.group for c in val})
        assert len(train) + len(val) == len(clips)
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 3   # largest group has 3 clips
    assert group_kfold(clips, 4, seed=1) == folds


def test_group_kfold_bad_k():
    clips = fake_clips({'A': ['v_A_g01_c01', 'v_A_g01_c02', 'v_A_g02_c01']})
    with pytest.raises(DatasetError, match='at most 2'):
        group_kfold(clips, 3, 0)
    with pytest.raises(DatasetError, match='k >= 2'):
        group_kfold(clips, 1, 0)


# ------------------------------------------------------------------------------- load_dataset: UCF

def test_ucf_layout_matches_stems_and_counts_missing(ucf_tree):
    ds = load_dataset(ucf_tree)
    assert isinstance(ds, DatasetSplit) and ds.layout == 'ucf101' and ds.root == str(ucf_tree.resolve())
    assert ds.classes == CLASSES
    n_train = len(TRAIN_GROUPS) * CLIPS_PER_GROUP
    assert [c.stem for c in ds.train] == listed('Alpha', TRAIN_GROUPS) + listed('Beta', TRAIN_GROUPS)[:2]
    assert [c.stem for c in ds.test] == [ucf('Alpha', 1, 1)]
    first = ds.train[0]
    assert first == Clip(path=str(ucf_tree.resolve() / 'Alpha' / (first.stem + '.avi')), label=0,
                         class_name='Alpha', stem=ucf('Alpha', 3, 1), group='g03', kind='video')
    assert ds.train[1].path.endswith('.mp4') and ds.train[-1].label == 1 and ds.train[-1].path.endswith('.MP4')
    listed_total = len(CLASSES) * (len(TRAIN_GROUPS) + len(TEST_GROUPS)) * CLIPS_PER_GROUP
    assert len(ds.missing) == listed_total - len(ds.train) - len(ds.test)
    assert f'Gamma/{ucf("Gamma", 1, 1)}.avi' in ds.missing
    assert ds.description == (f"UCF-101 split 1, 3 classes: {n_train + 2} train / 1 test clips on disk "
                              f"({len(ds.missing)} listed clips absent); no clips on disk for Gamma")
    summary = json.loads(json.dumps(ds.summary()))
    assert summary['per_class'] == {'Alpha': {'train': n_train, 'test': 1}, 'Beta': {'train': 2, 'test': 0},
                                    'Gamma': {'train': 0, 'test': 0}}
    assert (summary['train'], summary['test'], summary['missing']) == (n_train + 2, 1, len(ds.missing))


def test_ucf_class_selection_relabels(ucf_tree):
    ds = load_dataset(ucf_tree, classes='Beta')
    assert ds.classes == ['Beta'] and {c.label for c in ds.train} == {0} and len(ds.train) == 2
    assert all(m.startswith('Beta/') for m in ds.missing)
    ds2 = load_dataset(ucf_tree, classes=2, split=2, splits=ucf_tree.parent / 'ucfTrainTestlist')
    assert ds2.classes == ['Alpha', 'Beta'] and ds2.description.startswith('UCF-101 split 2, 2 classes')
    with pytest.raises(DatasetError, match=r"'Gama' \(did you mean 'Gamma'\?\) in .*classInd\.txt"):
        load_dataset(ucf_tree, classes='Alpha,Gama')


def test_ucf_selection_without_any_clip_on_disk_is_an_error(ucf_tree):
    with pytest.raises(DatasetError, match=rf"training clips under {ucf_tree.resolve()} that match trainlist01"):
        load_dataset(ucf_tree, classes='Gamma')


def test_ucf_frame_folders(tmp_path):
    root = tmp_path / 'frames'
    for stem in listed('Alpha', TRAIN_GROUPS):
        for i in range(1, 4):
            touch(root / 'Alpha' / stem / f'{i:06d}.jpg')
    (root / 'Beta' / ucf('Beta', 3, 1)).mkdir(parents=True)   # no images: not a clip
    touch(root / 'Beta' / ucf('Beta', 3, 2) / '.thumb.jpg')      # hidden images do not count
    ds = load_dataset(root, splits=make_splits(tmp_path / 'lists'))
    assert [c.kind for c in ds.train] == ['frames'] * len(listed('Alpha', TRAIN_GROUPS))
    assert ds.train[0].path == str(root.resolve() / 'Alpha' / ucf('Alpha', 3, 1))
    assert 'Beta/' + ucf('Beta', 3, 1) + '.avi' in ds.missing
    assert '; as frame folders' in ds.description


def test_ucf_video_wins_over_frame_folder_of_same_stem(tmp_path):
    stem = ucf('Alpha', 3, 1)
    touch(tmp_path / 'd' / 'Alpha' / stem / '1.png')
    touch(tmp_path / 'd' / 'Alpha' / f'{stem}.mp4')
    ds = load_dataset(tmp_path / 'd', splits=make_splits(tmp_path / 'lists'))
    assert [(c.stem, c.kind) for c in ds.train] == [(stem, 'video')]


@pytest.mark.parametrize('kwargs, message', [
    (dict(), 'No dataset given'),
    (dict(data='MISSING'), r'Dataset folder .*MISSING does not exist'),
    (dict(data='FILE'), r'Dataset folder .*FILE is not a folder'),
    (dict(data='UCF', splits='MISSING'), r'Splits folder .*MISSING does not exist'),
    (dict(data='UCF', split=4), 'split 4 does not exist'),
    (dict(data='UCF', split=0), 'split 0 does not exist'),
    (dict(data='UCF', split=3), r'trainlist03\.txt is missing from .*ucfTrainTestlist'),
    (dict(data='UCF', splits='EMPTY'), r'classInd\.txt is missing from .*EMPTY'),
    (dict(data='UCF', features='MISSING'), r'Features folder .*MISSING does not exist'),
])
def test_load_dataset_errors(ucf_tree, kwargs, message):
    tmp = ucf_tree.parent
    (tmp / 'EMPTY').mkdir()
    touch(tmp / 'FILE')
    names = {'MISSING': tmp / 'MISSING', 'FILE': tmp / 'FILE', 'UCF': ucf_tree, 'EMPTY': tmp / 'EMPTY'}
    kwargs = {k: names.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(DatasetError, match=message):
        load_dataset(**kwargs)


def test_malformed_or_inconsistent_split_files(ucf_tree):
    lists = ucf_tree.parent / 'ucfTrainTestlist'
    write_crlf(lists / 'testlist01.txt', ['Alpha/v_Alpha_g01_c01.avi', 'garbage line here'])
    with pytest.raises(DatasetError, match=r'testlist01\.txt line 2'):
        load_dataset(ucf_tree)
    write_crlf(lists / 'testlist01.txt', [])
    write_crlf(lists / 'trainlist01.txt', ['Alpha/v_Alpha_g03_c01.avi 2'])
    with pytest.raises(DatasetError, match='label 2 but classInd.txt numbers it 1'):
        load_dataset(ucf_tree)


# ---------------------------------------------------------------------------- load_dataset: folders

def test_folder_per_class_group_split(tmp_path):
    root = clip_dataset(tmp_path / 'clips', classes=3, groups=10, per_group=2)
    (root / 'EmptyClass').mkdir()
    touch(root / 'Class1' / 'readme.txt')
    ds = load_dataset(root, val_fraction=0.2, seed=3)
    assert ds.layout == 'folders' and ds.classes == ['Class0', 'Class1', 'Class2'] and ds.missing == []
    assert {c.group for c in ds.train}.isdisjoint({c.group for c in ds.test})
    assert len(ds.test) == 12 and len(ds.train) == 48     # 2 of 10 groups per class
    assert 'seeded group split, 20% val, seed 3' in ds.description and 'EmptyClass' in ds.description
    again = load_dataset(root, val_fraction=0.2, seed=3)
    assert (again.train, again.test) == (ds.train, ds.test)
    sub = load_dataset(root, classes='Class2,Class0')
    assert sub.classes == ['Class0', 'Class2'] and {c.label for c in sub.train} == {0, 1}
    with pytest.raises(DatasetError, match="'Class9'.*class folders of"):
        load_dataset(root, classes='Class9')


def test_folder_per_class_plain_names_are_their_own_groups(tmp_path):
    for k in range(2):
        for i in range(10):
            touch(tmp_path / 'd' / f'k{k}' / f'clip{i}.avi')
    ds = load_dataset(tmp_path / 'd', val_fraction=0.3, seed=0)
    assert ds.summary()['per_class'] == {'k0': {'train': 7, 'test': 3}, 'k1': {'train': 7, 'test': 3}}


def test_folder_without_class_folders_is_an_error(tmp_path):
    touch(tmp_path / 'loose' / 'a.mp4')
    (tmp_path / 'loose' / 'empty').mkdir()
    with pytest.raises(DatasetError, match=r'No class folders with clips .* under .*loose'):
        load_dataset(tmp_path / 'loose')


# --------------------------------------------------------------------------- load_dataset: features

def save_features(folder: Path, stems) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        np.save(folder / f'{stem}.npy', np.zeros((4, 8), np.float32))


def test_features_flat_with_split_files(tmp_path):
    feats = tmp_path / 'features'
    save_features(feats, listed('Alpha', TRAIN_GROUPS) + listed('Beta', TEST_GROUPS)[:1])
    touch(feats / 'stray.npy.partial')
    make_splits(tmp_path / 'ucfTrainTestlist')     # found next to the features folder
    ds = load_dataset(features=feats)
    assert ds.layout == 'features' and ds.root == str(feats.resolve())
    assert {c.kind for c in ds.train + ds.test} == {'features'}
    assert len(ds.train) == 6 and [c.label for c in ds.test] == [1]
    assert ds.train[0].path == str(feats.resolve() / f'{ucf("Alpha", 3, 1)}.npy')
    assert '; as feature files' in ds.description


def test_features_class_folders_use_the_data_split_files(tmp_path, ucf_tree):
    feats = tmp_path / 'feats'
    save_features(feats / 'Beta', listed('Beta', TRAIN_GROUPS))
    ds = load_dataset(data=ucf_tree, features=feats, classes='Beta')   # splits found via data
    assert [c.stem for c in ds.train] == listed('Beta', TRAIN_GROUPS)  # features replace the 2 videos
    assert all(c.path.startswith(str(feats.resolve() / 'Beta')) for c in ds.train)


def test_features_class_folders_without_split_files_group_split(tmp_path):
    feats = tmp_path / 'f'
    for k in range(2):
        save_features(feats / f'C{k}', [ucf(f'C{k}', g, 1) for g in range(1, 6)])
    ds = load_dataset(features=feats, val_fraction=0.2)
    assert ds.layout == 'features' and ds.classes == ['C0', 'C1']
    assert len(ds.test) == 2 and ds.description.startswith('Feature folders per class, 2 classes')


def test_features_errors(tmp_path):
    flat = tmp_path / 'flat'
    save_features(flat, ['v_A_g01_c01'])
    with pytest.raises(DatasetError, match=r'feature files \(\.npy\) under .*flat'):
        load_dataset(features=flat)           # no split files and no class folders
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DatasetError, match=r'No \.npy feature files found in .*empty'):
        load_dataset(features=empty, splits=make_splits(tmp_path / 'lists'))
    with pytest.raises(DatasetError, match=r'training feature files .* under .*flat'):
        load_dataset(features=flat, splits=tmp_path / 'lists')


# ----------------------------------------------------------------------------------- real UCF-101

@pytest.fixture
def real_root():
    if not (REAL / 'UCF-101').is_dir() or not (REAL / 'ucfTrainTestlist').is_dir():
        pytest.skip(f'real UCF-101 sample not found at {REAL} (present in development and CI only)')
    return REAL / 'UCF-101'


def _listed_count(classes: list[str]) -> int:
    lists = REAL / 'ucfTrainTestlist'
    return sum(cls in classes for name in ('trainlist01.txt', 'testlist01.txt')
               for cls, _, _ in read_split_list(lists / name))


def test_real_ucf101_first_nine_classes(real_root):
    ds = load_dataset(real_root, classes='9', split=1)
    assert ds.classes == ['ApplyEyeMakeup', 'ApplyLipstick', 'Archery', 'BabyCrawling', 'BalanceBeam',
                          'BandMarching', 'BaseballPitch', 'Basketball', 'BasketballDunk']
    assert len(ds.train) == 72 and len(ds.test) == 0 and ds.layout == 'ucf101'
    assert len(ds.missing) == _listed_count(ds.classes) - 72 == 873 + 341 - 72
    assert {c.kind for c in ds.train} == {'video'} and all(Path(c.path).is_file() for c in ds.train)
    assert ds.description.startswith('UCF-101 split 1, 9 classes: 72 train / 0 test clips on disk (1142 ')


def test_real_ucf101_named_classes(real_root):
    ds = load_dataset(real_root, classes='Archery,BabyCrawling')
    assert ds.classes == ['Archery', 'BabyCrawling']
    assert ds.summary()['per_class'] == {'Archery': {'train': 7, 'test': 0}, 'BabyCrawling': {'train': 7, 'test': 0}}
    assert len(ds.missing) == _listed_count(ds.classes) - 14
    assert {c.label for c in ds.train if c.class_name == 'BabyCrawling'} == {1}


def test_real_ucf101_parent_folder_gets_a_hint(real_root):
    with pytest.raises(DatasetError, match=r'did you mean .*UCF-101\?'):
        load_dataset(real_root.parent, classes=9)
