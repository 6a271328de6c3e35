"""Datasets of the course: files (found, downloaded, verified), tensors, loaders and toy distributions.

>>> from course_lib.data import load_binarized_mnist, make_loader
>>> x = load_binarized_mnist("train")          # float32 (50000, 1, 28, 28) in {0, 1}
>>> loader = make_loader(x, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0))

Files are looked up in ``$COURSE_DATA_DIR``, then in the user cache
(``$COURSE_CACHE_DIR``, else ``~/.cache/course_lib``), and downloaded from mirrors
when absent; each is verified by the SHA-256 of its decompressed content before use
(see :mod:`course_lib.data.download`). Natural-image patches for sparse coding are cut from
scikit-learn's two sample photographs and ZCA-whitened (:mod:`course_lib.data.patches`).
Tiny Shakespeare's words become skip-gram pairs in :mod:`course_lib.data.words`.
"""

from course_lib.data.datasets import (
    CharVocab,
    TensorData,
    char_dataset,
    load_binarized_mnist,
    load_digits,
    load_mnist,
    load_tiny_shakespeare,
    make_loader,
    parse_idx,
    read_idx,
)
from course_lib.data.download import (
    DATA_FILES,
    DATASETS,
    CorruptFileWarning,
    DataFetchError,
    DataFile,
    cache_dir,
    data_dirs,
    fetch,
    fetch_all,
    fetch_file,
    find_local,
    verify,
)
from course_lib.data.patches import ZCAWhitening, extract_patches, load_image_patches, load_sample_images
from course_lib.data.toy import (
    TOY_1D,
    TOY_2D,
    Checkerboard,
    DiscretizedGaussianMixture,
    EightGaussians,
    GaussianMixture1D,
    NoisyCurves,
    SmileyGrid,
    checkerboard,
    eight_gaussians,
    sample_toy_1d,
    sample_toy_2d,
    spiral,
    toy_distribution,
    two_moons,
)
from course_lib.data.words import (
    SkipGramData,
    WordVocab,
    noise_distribution,
    skipgram_dataset,
    skipgram_pairs,
    subsample_frequent,
    tokenize_words,
)

__all__ = [
    "DATASETS",
    "DATA_FILES",
    "TOY_1D",
    "TOY_2D",
    "CharVocab",
    "Checkerboard",
    "CorruptFileWarning",
    "DataFetchError",
    "DataFile",
    "DiscretizedGaussianMixture",
    "EightGaussians",
    "GaussianMixture1D",
    "NoisyCurves",
    "SmileyGrid",
    "TensorData",
    "cache_dir",
    "char_dataset",
    "checkerboard",
    "data_dirs",
    "eight_gaussians",
    "fetch",
    "fetch_all",
    "fetch_file",
    "find_local",
    "load_binarized_mnist",
    "load_digits",
    "load_mnist",
    "load_tiny_shakespeare",
    "make_loader",
    "parse_idx",
    "read_idx",
    "sample_toy_1d",
    "sample_toy_2d",
    "spiral",
    "toy_distribution",
    "two_moons",
    "verify",
    # natural-image patches (topic 02)
    "ZCAWhitening",
    "extract_patches",
    "load_image_patches",
    "load_sample_images",
    # words for skip-gram (topic 03)
    "SkipGramData",
    "WordVocab",
    "noise_distribution",
    "skipgram_dataset",
    "skipgram_pairs",
    "subsample_frequent",
    "tokenize_words",
]
