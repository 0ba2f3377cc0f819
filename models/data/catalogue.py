"""The dataset catalogue: each dataset's folder layout, accepted file names, digests and sources.

A data directory has the same layout as the project's shared data folder::

    <data-dir>/mnist/             train-images-idx3-ubyte.gz ...
    <data-dir>/fashion-mnist/     train-images-idx3-ubyte.gz ...
    <data-dir>/thyroid/halo-tdd/  TDD-Female.csv.gz  TDD-Male.csv.gz
    <data-dir>/gsad/uci270_at_different_concentrations/  batch1.dat.gz ... batch10.dat.gz
    <data-dir>/cifar10/           data_batch_1.bin.gz ... test_batch.bin.gz

Every file may be stored gzip-compressed (``NAME.gz``) or plain (``NAME``); the loaders
accept both. Digests are ``"sha256:<hex>"`` (or ``"md5:<hex>"`` where only an MD5 is
published) of the bytes of that stored form. Digests of the gzip forms are those of the
project's shared copy (``SHA256SUMS``); for MNIST and Fashion-MNIST they equal upstream's
files. Digests of the plain forms were computed from the shared copy by decompressing it,
so they are the digests of the upstream plain files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

from .errors import UnknownDataset


@dataclass(frozen=True)
class FileSpec:
    """One logical file of a dataset and the names it may be stored under.

    ``names`` satisfy it fully (preferred first); ``partial_names`` satisfy it only in
    part (a truncated copy). ``digests`` maps a stored name to its known digest."""

    key: str
    names: Tuple[str, ...]
    digests: Dict[str, str] = field(default_factory=dict)
    required: bool = True
    partial_names: Tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Download:
    """One upstream download.

    A plain file is verified and saved as ``save_as``. An archive (``extract`` non-empty)
    is verified, then each listed member ``(basename, stored name, digest or None)`` is
    copied out and the archive deleted. ``convert`` names a post-processing step
    (``"tdd-npy-to-csv"``: write the CSV form of HALO's thyroid ``.npy``)."""

    url: str
    digest: str | None
    save_as: str | None = None
    extract: Tuple[Tuple[str, str, str | None], ...] = ()
    convert: str | None = None
    #: ``(basename, digest)`` of an archive inside the download that holds the members
    #: (UCI's newer zips wrap the dataset's own zip); it is verified before use.
    inner: Tuple[str, str] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: its folder under the data directory, its files and where they come from."""

    name: str
    subdir: str
    title: str
    files: Tuple[FileSpec, ...]
    downloads: Tuple[Download, ...]
    homepage: str
    license: str
    min_present: int = 1

    def file(self, key: str) -> FileSpec:
        """Return the :class:`FileSpec` with this key (KeyError if none)."""
        for spec in self.files:
            if spec.key == key:
                return spec
        raise KeyError(key)


def _idx_files(plain: Dict[str, str], gz: Dict[str, str]) -> Tuple[FileSpec, ...]:
    specs = []
    for key in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        ndim = "3" if key.endswith("images") else "1"
        name = f"{key}-idx{ndim}-ubyte"
        specs.append(
            FileSpec(key, (name + ".gz", name), {name + ".gz": gz[key], name: plain[key]})
        )
    return tuple(specs)


def _idx_downloads(base: str, files: Tuple[FileSpec, ...]) -> Tuple[Download, ...]:
    return tuple(
        Download(base + f.names[0], f.digests[f.names[0]], save_as=f.names[0]) for f in files
    )


_MNIST_FILES = _idx_files(
    plain={
        "train-images": "sha256:ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels": "sha256:65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images": "sha256:0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels": "sha256:ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    gz={
        "train-images": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

_FASHION_FILES = _idx_files(
    plain={
        "train-images": "sha256:c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels": "sha256:bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images": "sha256:5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels": "sha256:0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    gz={
        "train-images": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
)

# --- thyroid (HALO's TDD split) --------------------------------------------------------
_HALO_RAW = (
    "https://raw.githubusercontent.com/GATECH-EIC/HALO/"
    "c810834d12d04c9781c2552a2e1a71be896eb6ea/l2o-scale-regularize-test/"
)
_TDD_DIGESTS = {
    "female": {
        "TDD-Female.csv.gz":
            "sha256:2408bbd5e256d7fc971b8ba50938d9cab4ecad3e09a8eb2fba20301b01bae63d",
        "TDD-Female.csv":
            "sha256:329edaec6e8ed876748aa1d1ec3b5450d8d6f0e6cb32d6dc69941c6fb7c864ae",
        "TDD-Female.npy":
            "sha256:2770f5043a46dea45332612b3a1ef9b3c998f9e93ad9b4af0ca1d967c3907eed",
    },
    "male": {
        "TDD-Male.csv.gz":
            "sha256:dfe80314cc8f664f64be3ab48a9feb3d517b032e9d67a35aaa3a6b8455ae1175",
        "TDD-Male.csv":
            "sha256:5bb903b9f029ef60d64da2e0469508351d572463bf4760a53446d2f35829316e",
        "TDD-Male.npy":
            "sha256:c403f43a33bf80d0f4d25a654123f04a718c8e94aa24601aa532ef11fe5b34dc",
    },
}
_TDD_FILES = tuple(
    FileSpec(dom, (f"TDD-{dom.title()}.csv.gz", f"TDD-{dom.title()}.csv",
                   f"TDD-{dom.title()}.npy"), _TDD_DIGESTS[dom],
             note="the .npy is read with a restricted unpickler (numpy arrays only)")
    for dom in ("female", "male")
)
_TDD_DOWNLOADS = tuple(
    Download(_HALO_RAW + f"TDD-{dom.title()}.npy", _TDD_DIGESTS[dom][f"TDD-{dom.title()}.npy"],
             save_as=f"TDD-{dom.title()}.npy", convert="tdd-npy-to-csv")
    for dom in ("female", "male")
)

# --- gas sensor array drift at different concentrations (UCI 270) ----------------------
_GSAD_PLAIN = {
    1: "sha256:6b62f3e71b90f95dd9c2157fa91ffce32571faa7f474dd52f29a4ae769144625",
    2: "sha256:4ea9490068457badf9efd0c22f359fbfce12c208cdd440526b97ac91d31b9002",
    3: "sha256:aabf06bf8b8200740156235dc59458e06d99aa8faba4d6764a22c6b6c2674ff4",
    4: "sha256:ffc87c5146001bbe8ce90c4b2f7dad5b390ca3079f51b559032df53ffe5ff0af",
    5: "sha256:dcad4939c300a6c7d9f41b9470a9253eecc0ebc5c2c4e940d8ae20b8fc4240d0",
    6: "sha256:297d3a8b594dee4e2f4d7d2c4f5c485939fa708c10b5a11ed5cce95e05049afb",
    8: "sha256:58146b3e2dd68b125b2d5432cdd4968ec1fff47464ceb04282382181932d49be",
    9: "sha256:51f368ae8dee5d285be7f2029770e10eb12f342578830bc40ea852db19d19c9b",
}
_GSAD_GZ = {
    1: "sha256:a4c7d3adf2472039c58fa058468175a2ae761cdda3315700fc900e830d3dd26a",
    2: "sha256:1cf129576d799a9ee2e3e730dd17cd49f4e8d0e8e4a4d5e380e4af16c4291836",
    3: "sha256:bead15207f22cbda59115bccfc276c5577337d4fd169ab9ce1d4eeff38f61495",
    4: "sha256:867319098bd7a885bdec5eb67f56b6a2424aeb67a7c8fde436d82248784dcb85",
    5: "sha256:28f60a451e3011a35ff16717b29bcaea8308d89d09f7084f32263d6ec7827ef9",
    6: "sha256:9d35eda987ef3aa048d9363b64e958179d7ef6c9be0f291cbdb4e4874dc689e2",
    8: "sha256:7ae96a6b806f20a3215aab4b809124f8aec0de680ea4ea38a40d15dd55306384",
    9: "sha256:890e1c7ea58495642c8e81b321b7307b6120a5ca68ddf830eea96b03a942e364",
}
GSAD_BATCHES = tuple(range(1, 11))


def _gsad_digests(b: int) -> Dict[str, str]:
    out = {}
    if b in _GSAD_GZ:
        out[f"batch{b}.dat.gz"] = _GSAD_GZ[b]
    if b in _GSAD_PLAIN:
        out[f"batch{b}.dat"] = _GSAD_PLAIN[b]
    return out


_GSAD_FILES = tuple(
    FileSpec(f"batch{b}", (f"batch{b}.dat.gz", f"batch{b}.dat"), _gsad_digests(b),
             required=False)
    for b in GSAD_BATCHES
)
_GSAD_DOWNLOADS = (
    Download(
        "https://archive.ics.uci.edu/static/public/270/"
        "gas+sensor+array+drift+dataset+at+different+concentrations.zip",
        # Archive digest as published by independent users of the UCI archive (not
        # checked against our copy, which lacks batches 7 and 10).
        "sha256:98fe3a30981a222dd4518fbcc3dddd45d5c0ce9b03ef6dc6fe5cf7a04cfbff5e",
        extract=tuple((f"batch{b}.dat", f"batch{b}.dat", _GSAD_PLAIN.get(b))
                      for b in GSAD_BATCHES),
    ),
)

# --- UCI HAR (human activity recognition using smartphones), UCI 240 ---------------------
# Plain digests of the label files: the shared copy decompressed (their gzip forms are in
# the shared SHA256SUMS).  The feature files have no published digest of their own; they
# are covered by the verified outer and inner archives.
_HAR_PLAIN = {
    "train/y_train.txt": "sha256:415b3357e2e2d5e70a45c781947c6bdd80e0410a579d862eedcd6bbce3c694ef",
    "train/subject_train.txt":
        "sha256:66e1e2fbe9b396fa5155f531dc3348c803f503be663e2318772d49947db9153a",
    "test/y_test.txt": "sha256:2a94cb53ca46b956c1b2aebd4a09a72badd8a8e9ea9cdfe9f31b3306a08666bb",
    "test/subject_test.txt":
        "sha256:63b8c577f4a85431c06bd87f6384608c90a9f72f05c7956dd21255dc63515c07",
}
_HAR_GZ = {
    "train/y_train.txt.gz": "sha256:aaf87bd71bdf73ac95133f15ee61ea7779cd6d9bf4c46cf93a06f796df43404b",
    "train/subject_train.txt.gz":
        "sha256:d42f7bfbc3ea3029f1c19b6071246051efb0ad42374aa12848134edea4c248c6",
    "test/y_test.txt.gz": "sha256:17bc6588bd4faea64558b0697197e8094fbdbba7be31d5b6d872525ca3d14b83",
    "test/subject_test.txt.gz":
        "sha256:0a4718381415fbbac5fd6fa65a376fcc23239e06625d76a37e72f147c3392276",
}
_HAR_KEYS = (("x_train", "train/X_train.txt"), ("y_train", "train/y_train.txt"),
             ("subject_train", "train/subject_train.txt"), ("x_test", "test/X_test.txt"),
             ("y_test", "test/y_test.txt"), ("subject_test", "test/subject_test.txt"))
_HAR_FILES = tuple(
    FileSpec(key, (name + ".gz", name),
             {k: v for k, v in ((name, _HAR_PLAIN.get(name)), (name + ".gz", _HAR_GZ.get(name + ".gz")))
              if v}, required=not key.startswith("subject"))
    for key, name in _HAR_KEYS
)
_HAR_DOWNLOADS = (
    Download(
        "https://archive.ics.uci.edu/static/public/240/"
        "human+activity+recognition+using+smartphones.zip",
        # Digests of the archive and of the zip inside it as published by independent
        # users of the UCI archive (not checked here: no network at run time).
        "sha256:c00b803081a5c797cd5e4b83700a9810b38d53d9d84e01917e090e1fdbc81031",
        inner=("UCI HAR Dataset.zip",
               "sha256:2045e435c955214b38145fb5fa00776c72814f01b203fec405152dac7d5bfeb0"),
        extract=tuple((name.rsplit("/", 1)[1], name, _HAR_PLAIN.get(name)) for _, name in _HAR_KEYS),
    ),
)

# --- CIFAR-10 binary version -----------------------------------------------------------
_CIFAR_PLAIN = {
    1: "sha256:cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    2: "sha256:a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    3: "sha256:bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    4: "sha256:014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    5: "sha256:755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
}
_CIFAR_GZ = {
    1: "sha256:6fcee3c4b6ea120cf82b263e2e9fe932e7edf7daf530e8b8ed62c178f70910c6",
    2: "sha256:fdda9af5bfc1ff90c0018a3c997cc37619077ae8e4e7f1238323a8259607add2",
    3: "sha256:6cfabbc0ca93a74e247cf16f68544c0b2162576f7e2aa8d8e5d73778cbdfe628",
    4: "sha256:361042113c9a826b76ab9f91d499ae3102fd43ece9af030844a33b4d801c2743",
    5: "sha256:4c618c86d699c20baa688bcbc1ca629a1c2e9bbe7647d66c2e6869b025174b12",
}
# Only an MD5 is published for the full test batch (the extracted-file list of
# cifar-10-binary.tar.gz); the shared copy holds only its first 1000 records.
_CIFAR_TEST_MD5 = "md5:803d5f7f4d78ea53de84dbe85f74fb6d"
_CIFAR_FILES = tuple(
    FileSpec(f"data_batch_{i}", (f"data_batch_{i}.bin.gz", f"data_batch_{i}.bin"),
             {f"data_batch_{i}.bin.gz": _CIFAR_GZ[i], f"data_batch_{i}.bin": _CIFAR_PLAIN[i]})
    for i in range(1, 6)
) + (
    FileSpec(
        "test_batch", ("test_batch.bin.gz", "test_batch.bin"),
        {
            "test_batch.bin": _CIFAR_TEST_MD5,
            "test_batch_first1000.bin.gz":
                "sha256:3d5e72c2623a79c57b916d8669b4cba52fa2984d04cb8cd7d256902adc743432",
            "test_batch_first1000.bin":
                "sha256:8314c96d7cd65618193bab23acdd5d4c4af15bf6dd00a1781d55beedf3be1ef5",
        },
        partial_names=("test_batch_first1000.bin.gz", "test_batch_first1000.bin"),
        note="test_batch_first1000 holds only test records 0-999",
    ),
)
_CIFAR_DOWNLOADS = (
    Download(
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        # 170,052,171 bytes; MD5 c32a1d4ab5d03f1284b67883e8d87530 on the CIFAR page.
        "sha256:c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        extract=tuple((f"data_batch_{i}.bin", f"data_batch_{i}.bin", _CIFAR_PLAIN[i])
                      for i in range(1, 6)) + (("test_batch.bin", "test_batch.bin",
                                                _CIFAR_TEST_MD5),),
    ),
)

_MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

CATALOGUE: Dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist", "mnist", "MNIST handwritten digits (IDX)", _MNIST_FILES,
                    _idx_downloads(_MNIST_BASE, _MNIST_FILES),
                    "http://yann.lecun.com/exdb/mnist/", "no explicit license; research use",
                    min_present=4),
        DatasetInfo("fashion-mnist", "fashion-mnist", "Fashion-MNIST (IDX)", _FASHION_FILES,
                    _idx_downloads(_FASHION_BASE, _FASHION_FILES),
                    "https://github.com/zalandoresearch/fashion-mnist", "MIT",
                    min_present=4),
        DatasetInfo("thyroid", "thyroid/halo-tdd", "HALO's thyroid split (TDD, female/male)",
                    _TDD_FILES, _TDD_DOWNLOADS, "https://github.com/GATECH-EIC/HALO",
                    "MIT (derived from UCI Thyroid Disease, CC BY 4.0)", min_present=2),
        DatasetInfo("gsad", "gsad/uci270_at_different_concentrations",
                    "Gas sensor array drift at different concentrations (UCI 270)",
                    _GSAD_FILES, _GSAD_DOWNLOADS,
                    "https://archive.ics.uci.edu/dataset/270", "CC BY 4.0", min_present=1),
        DatasetInfo("har", "har", "UCI HAR smartphones, 561 features (UCI 240)", _HAR_FILES,
                    _HAR_DOWNLOADS, "https://archive.ics.uci.edu/dataset/240", "CC BY 4.0",
                    min_present=4),
        DatasetInfo("cifar10", "cifar10", "CIFAR-10, binary version", _CIFAR_FILES,
                    _CIFAR_DOWNLOADS, "https://www.cs.toronto.edu/~kriz/cifar.html",
                    "no explicit license; cite the tech report", min_present=6),
    )
}


def get_dataset(name: str) -> DatasetInfo:
    """Return the catalogue entry of a dataset; :class:`UnknownDataset` lists the known names."""
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(sorted(CATALOGUE))
        raise UnknownDataset(f"unknown dataset {name!r}; known datasets: {known}") from None


def layout_text(info: DatasetInfo, data_dir: str = "<data-dir>") -> str:
    """Describe the expected folder layout of a dataset, one file per line (for messages)."""
    lines = [f"expected layout of {info.name} ({info.title}):", f"  {data_dir}/{info.subdir}/"]
    for spec in info.files:
        alts = " or ".join(spec.names + spec.partial_names)
        tag = "" if spec.required else "  (optional)"
        lines.append(f"    {alts}{tag}")
    return "\n".join(lines)
