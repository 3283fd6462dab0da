"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (PyTorch/torchvision-like constructors).

``ds[i]`` is ``(image, label)``: the image a uint8 NumPy array, ``(28, 28)`` for the MNISTs and
``(32, 32, 3)`` HWC for CIFAR (what torchvision gives as a PIL image), after ``transform``; the
label a Python int, after ``target_transform``. The whole split is exposed as torchvision does:
MNIST / Fashion-MNIST ``ds.data`` a uint8 Tensor (N, 28, 28) and ``ds.targets`` an int64 Tensor
(N,); CIFAR ``ds.data`` a uint8 NumPy array (N, 32, 32, 3) and ``ds.targets`` a list of ints.
They are read-only views of memory shared between instances (copy before writing in place);
assigning ``ds.data = ...`` / ``ds.targets = ...`` (e.g. a subset) replaces what the dataset
serves.

Without a transform, or with deterministic transforms (``ToTensor``, ``Normalize``, ...), the
DataLoader gathers whole batches with one fancy-index (``_get_batch``).

Files are looked up in ``<root>/<folder>/`` (the layout of the shared datasets folder, e.g.
``$DEEPGRAD_DATA/mnist/train-images-idx3-ubyte.gz``), then torchvision's ``<root>/MNIST/raw/``,
then ``<root>/`` itself; ``.gz`` or uncompressed. ``root`` defaults to ``$DEEPGRAD_DATA``, else
``~/.cache/deepgrad``; MNIST falls back to the copy bundled with the package.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ...tensor import Tensor
from ..dataset import Dataset, batch_fn
from . import _download, _formats, _paths

__all__ = ["VisionDataset", "MNIST", "FashionMNIST", "CIFAR10", "CIFAR100"]


def _as_array(value, dtype=None):
    arr = value.array if isinstance(value, Tensor) else np.asarray(value)
    return arr if dtype is None else arr.astype(dtype, copy=False)


class VisionDataset(Dataset):
    """Base of the image datasets: ``_images`` (N, H, W[, C]) uint8 and ``_labels`` (N,) int64
    NumPy arrays hold the split; ``data`` / ``targets`` present them as torchvision does
    (``_data_kind``: "tensor" or "numpy"; ``_targets_kind``: "tensor" or "list")."""

    folder = ""
    alt_folders: tuple = ()
    _data_kind = "numpy"
    _targets_kind = "list"

    def __init__(self, root=None, transform=None, target_transform=None):
        self.root = _paths.resolve_root(root)
        self._root_given = root is not None
        self.transform = transform
        self.target_transform = target_transform

    @property
    def data(self):
        if self._data_kind == "numpy":
            return self._images
        view = self.__dict__.get("_data_view")
        if view is None or view.array is not self._images:
            view = self._data_view = Tensor._make(self._images)
        return view

    @data.setter
    def data(self, value):
        self._images = _as_array(value)
        self._data_view = None

    @property
    def targets(self):
        view = self.__dict__.get("_targets_view")
        if view is None:
            view = (Tensor._make(self._labels) if self._targets_kind == "tensor"
                    else self._labels.tolist())
            self._targets_view = view
        return view

    @targets.setter
    def targets(self, value):
        self._labels = _as_array(value, np.int64)
        self._targets_view = None

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        n = len(self._labels)
        index = int(index)
        if index < -n or index >= n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for {n} samples")
        img = self._images[index].copy()
        target = int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def _get_batch(self, indices):
        if self.target_transform is not None:
            return None
        fn = batch_fn(self.transform)
        if fn is None:
            return None
        return fn(self._images[indices]), self._labels[indices]

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def _search_dirs(self):
        dirs = [self.root / self.folder] + [self.root / f for f in self.alt_folders] + [self.root]
        return dirs

    def _mirror_dirs(self):
        """The local datasets folder (``$DEEPGRAD_DATA`` or ``shared/datasets`` beside the
        checkout), searched before the network when ``download=True`` and ``root`` lacks the
        files: a program written for torchvision (``CIFAR10(root='./data', download=True)``) then
        runs offline. Files found there are checked against the same SHA-256 sums as downloaded
        ones."""
        mirror = _paths.shared_datasets_dir()
        if mirror is None or mirror.resolve() == self.root.resolve():
            return []
        return [mirror / self.folder] + [mirror / f for f in self.alt_folders]

    def _find(self, names, dirs=None):
        """The folder holding every file in ``names`` (each as-is or with/without ``.gz``), with the
        paths; or None."""
        for d in dirs or self._search_dirs():
            found = []
            for name in names:
                base = name[:-3] if name.endswith(".gz") else name
                for cand in (d / name, d / base, d / (base + ".gz")):
                    if cand.is_file():
                        found.append(cand)
                        break
                    if os.path.lexists(cand):       # a FIFO, a device, a dangling link: say so
                        raise _formats.DatasetFileError(cand, "is not a regular file; deepgrad reads dataset "
                                                              "files only from regular files")
                else:
                    break
            if len(found) == len(names):
                return d, found
        return None

    def _missing(self, names, dirs, extra=""):
        where = "\n".join(f"  {d}" for d in dirs)
        return FileNotFoundError(
            f"{type(self).__name__}: dataset files {names} not found; looked in:\n{where}\n"
            f"Pass root=<folder>, set $DEEPGRAD_DATA, or use download=True.{extra}")

    def __repr__(self):
        split = "train" if getattr(self, "train", True) else "test"
        return f"{type(self).__name__}(split={split}, samples={len(self)}, root={str(self.root)!r})"


class MNIST(VisionDataset):
    """The MNIST digits: 60,000 training and 10,000 test images, 28x28 grey, labels 0-9."""

    folder = "mnist"
    alt_folders = ("MNIST/raw",)
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    # per file: sha256 of the .gz as distributed, md5 of the .gz, sha256 of the uncompressed IDX data
    resources = {
        "train-images-idx3-ubyte.gz": dict(
            sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
            raw_sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte.gz": dict(
            sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            md5="d53e105ee54ea40749a09fcbcd1e9432",
            raw_sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte.gz": dict(
            sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            md5="9fb629c4189551a2d022fa330f9573f3",
            raw_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte.gz": dict(
            sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            md5="ec29112dd5afa0611ce80d1b7f02629c",
            raw_sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    }
    _data_kind = "tensor"
    _targets_kind = "tensor"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    bundled = "mnist"
    num_train, num_test = 60000, 10000

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False, verify=True):
        super().__init__(root, transform, target_transform)
        self.train = train
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        hit = self._find(names) or (self._find(names, self._mirror_dirs()) if download else None)
        if hit is None and download:
            self.download()
            hit = self._find(names, [self.root / self.folder])
        if hit is None and self.bundled:
            hit = self._find(names, [_paths.bundled_dir(self.bundled)])
        if hit is None:
            raise self._missing(names, self._search_dirs())
        self.raw_folder, (img_path, lbl_path) = hit
        n = self.num_train if train else self.num_test
        self.data = _formats.read_idx(img_path, 2051, (n, 28, 28), **self._checks(img_path, names[0], verify))
        labels = _formats.read_idx(lbl_path, 2049, (n,), **self._checks(lbl_path, names[1], verify))
        if labels.dtype != np.int64:
            labels = labels.astype(np.int64)
            labels.flags.writeable = False
        self.targets = labels
        labels = self._labels
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise _formats.DatasetFileError(lbl_path, f"labels outside 0..{len(self.classes) - 1}")

    # torchvision's deprecated aliases, still met in older programs
    @property
    def train_labels(self):
        warnings.warn("train_labels has been renamed targets", UserWarning, stacklevel=2)
        return self.targets

    @property
    def test_labels(self):
        warnings.warn("test_labels has been renamed targets", UserWarning, stacklevel=2)
        return self.targets

    @property
    def train_data(self):
        warnings.warn("train_data has been renamed data", UserWarning, stacklevel=2)
        return self.data

    @property
    def test_data(self):
        warnings.warn("test_data has been renamed data", UserWarning, stacklevel=2)
        return self.data

    def _checks(self, path, name, verify):
        if not verify:
            return {}
        spec = self.resources.get(name, {})
        if spec.get("raw_sha256"):
            return {"sha256": spec["raw_sha256"]}
        if spec.get("md5") and path.name == name:
            return {"file_md5": spec["md5"]}
        return {}

    def download(self):
        """Fetch the four files from the canonical mirrors into ``<root>/<folder>/`` (verified)."""
        dest = self.root / self.folder
        for name, spec in self.resources.items():
            if self._find([name], [dest]) is None:
                _download.download_from_mirrors(self.mirrors, name, dest, sha256=spec.get("sha256"),
                                                md5=None if spec.get("sha256") else spec.get("md5"))


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the MNIST format and sizes, 10 clothing classes."""

    folder = "fashionmnist"
    alt_folders = ("FashionMNIST/raw", "fashion-mnist")
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"]
    resources = {
        "train-images-idx3-ubyte.gz": dict(md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": dict(md5="25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": dict(md5="bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": dict(md5="bb300cfdad3c16e7a12a480ee83cd310"),
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    bundled = None


def _read_names(path):
    return _formats.read_names(path)


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, 10 classes (binary
    version; ``.bin`` as in the official archive or ``.bin.gz``)."""

    folder = "cifar10"
    alt_folders = ("cifar10/cifar-10-batches-bin", "cifar-10-batches-bin")
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    archive = dict(filename="cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530",
                   sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")
    train_list = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_list = ["test_batch.bin"]
    meta_file = "batches.meta.txt"
    # SHA-256 of each uncompressed .bin (identical to the original release)
    raw_sha256 = {
        "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
        "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
        "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
        "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
        "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
        "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
    }
    records_per_file = 10000
    label_bytes = 1
    default_classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False, verify=True):
        super().__init__(root, transform, target_transform)
        self.train = train
        names = self.train_list if train else self.test_list
        hit = self._find(names) or (self._find(names, self._mirror_dirs()) if download else None)
        if hit is None and download:
            self.download()
            hit = self._find(names)
        if hit is None:
            raise self._missing(names, self._search_dirs())
        self.raw_folder, paths = hit
        images, labels = [], []
        for name, p in zip(names, paths):
            sha = self.raw_sha256.get(name) if verify else None
            im, lb = _formats.read_cifar_bin(p, self.label_bytes, self.records_per_file, sha, self._num_classes())
            images.append(im)
            labels.append(lb)
        data = images[0] if len(images) == 1 else np.concatenate(images)
        data.flags.writeable = False
        self.data = data
        all_labels = labels[0] if len(labels) == 1 else np.concatenate(labels)
        self._set_targets(all_labels)
        self.classes = self._load_classes()

    def _num_classes(self):
        return 10

    def _set_targets(self, labels):
        t = np.ascontiguousarray(labels[:, 0]).astype(np.int64)
        t.flags.writeable = False
        self.targets = t

    def _load_classes(self):
        meta = self.raw_folder / self.meta_file
        if meta.is_file():
            names = _read_names(meta)
            if len(names) == len(self.default_classes):
                return names
        return list(self.default_classes)

    def download(self):
        """Fetch the binary archive, verify it, extract it safely into ``<root>/<folder>/``."""
        dest = self.root / self.folder
        path = _download.download_url(self.url, dest, self.archive["filename"], sha256=self.archive.get("sha256"),
                                      md5=self.archive.get("md5"))
        _download.extract_archive(path, dest)


class CIFAR100(CIFAR10):
    """CIFAR-100: 100 fine classes grouped in 20 coarse ones (binary version: records of
    coarse label, fine label, 3072 pixels). ``target_type`` 'fine' (default) or 'coarse';
    ``ds.coarse_targets`` and ``ds.fine_targets`` hold both."""

    folder = "cifar100"
    alt_folders = ("cifar100/cifar-100-binary", "cifar-100-binary")
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    archive = dict(filename="cifar-100-binary.tar.gz", md5="03b5dce01913d631647c71ecec9e9cb8")
    train_list = ["train.bin"]
    test_list = ["test.bin"]
    meta_file = "fine_label_names.txt"
    raw_sha256 = {}
    train_records, test_records = 50000, 10000
    label_bytes = 2
    default_classes = (
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel "
        "can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur "
        "dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion "
        "lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree "
        "pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea "
        "seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank "
        "telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
    ).split()
    default_coarse_classes = (
        "aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices "
        "household_furniture insects large_carnivores large_man-made_outdoor_things large_natural_outdoor_scenes "
        "large_omnivores_and_herbivores medium_mammals non-insect_invertebrates people reptiles small_mammals "
        "trees vehicles_1 vehicles_2").split()

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False, verify=True,
                 target_type="fine"):
        if target_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: target_type must be 'fine' or 'coarse', got {target_type!r}")
        self.target_type = target_type
        self.records_per_file = self.train_records if train else self.test_records
        super().__init__(root, train, transform, target_transform, download, verify)
        if target_type == "coarse":
            self.targets = self.coarse_targets
            self.classes = self.coarse_classes

    def _num_classes(self):
        return (20, 100)

    def _set_targets(self, labels):
        self.coarse_targets = np.ascontiguousarray(labels[:, 0])
        self.fine_targets = np.ascontiguousarray(labels[:, 1])
        for t in (self.coarse_targets, self.fine_targets):
            t.flags.writeable = False
        self.targets = self.fine_targets

    def _load_classes(self):
        fine = super()._load_classes()
        meta = self.raw_folder / "coarse_label_names.txt"
        coarse = _read_names(meta) if meta.is_file() else []
        self.coarse_classes = coarse if len(coarse) == 20 else list(self.default_coarse_classes)
        return fine
