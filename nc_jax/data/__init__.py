"""nc_jax.data: in-memory data sets, label transforms and minibatches.

Example::

  from nc_jax import data
  train = data.load("mnist", "train")           # uint8 [60000, 28, 28, 1]
  train = data.balanced_subset(train, 500, seed=0)
  train = data.add_label_noise(train, 0.2, seed=0)   # keeps clean_labels
  mean, std = data.dataset_stats(train)
  for batch in data.batch_iterator(train, 128, seed=0, num_epochs=1,
                                   preprocess=lambda x: data.normalize(x, mean, std)):
    ...  # batch = {"image": float32 [128, 28, 28, 1], "label": int32 [128]}
"""

from nc_jax.data.constants import (CIFAR10_CLASSES, CIFAR100_CLASSES,
                                   CIFAR100_FINE_TO_COARSE,
                                   CIFAR100_SUPERCLASS_MEMBERS,
                                   CIFAR100_SUPERCLASSES, DATASET_STATS,
                                   FASHION_MNIST_CLASSES, MNIST_CLASSES)
from nc_jax.data.core import (Dataset, DatasetNotFoundError, cache_dir,
                              default_data_root)
from nc_jax.data import formats
from nc_jax.data.formats import DamagedImageError, read_cifar_pickle, read_idx
from nc_jax.data.pipeline import (batch_iterator, compute_stats, dataset_stats,
                                  epoch_batches, epoch_index_batches,
                                  epoch_permutation, normalize,
                                  to_float)
from nc_jax.data.sources import KNOWN_NAMES, load, load_image_folder
from nc_jax.data.transforms import (CIFAR10_EIGHT, CORRUPTION_LEVELS, DOMAIN_SHIFT_LEVELS,
                                    SUPERCLASS_MAPS, select_classes,
                                    add_label_noise, balanced_subset, corrupt,
                                    coarse_table, corrupt_images, mod_coarse_map,
                                    split_classes, superclass,
                                    symmetric_noise, to_coarse)

__all__ = [
    "CIFAR10_CLASSES", "CIFAR100_CLASSES", "CIFAR100_FINE_TO_COARSE",
    "CIFAR10_EIGHT", "CIFAR100_SUPERCLASS_MEMBERS", "select_classes", "CIFAR100_SUPERCLASSES",
    "CORRUPTION_LEVELS", "DATASET_STATS", "DOMAIN_SHIFT_LEVELS", "DamagedImageError", "Dataset",
    "DatasetNotFoundError",
    "FASHION_MNIST_CLASSES", "KNOWN_NAMES", "MNIST_CLASSES",
    "SUPERCLASS_MAPS", "add_label_noise", "balanced_subset", "batch_iterator",
    "cache_dir", "compute_stats", "corrupt", "corrupt_images",
    "dataset_stats", "default_data_root", "epoch_batches", "epoch_index_batches",
    "coarse_table", "epoch_permutation", "load", "load_image_folder", "mod_coarse_map",
    "normalize", "read_cifar_pickle", "read_idx", "split_classes",
    "superclass", "symmetric_noise", "to_coarse", "to_float",
]
