"""Constant tables: class names, super-class maps and normalization statistics.

The CIFAR-100 fine -> coarse table is written twice on purpose: once as the
membership lists of the official data set description (20 super-classes of 5
fine classes each, https://www.cs.toronto.edu/~kriz/cifar.html) and once as
the numeric 100-entry table that is used; `tests/test_data.py` checks that the
two agree, so a typo in either one fails loudly.
"""

from __future__ import annotations

import numpy as np

MNIST_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
    "Sneaker", "Bag", "Ankle boot")

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
    "ship", "truck")

# Fine labels of CIFAR-100 in label order (alphabetical, as in `meta`).
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle",
    "bicycle", "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel",
    "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea",
    "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table",
    "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
    "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman",
    "worm")

# Coarse labels of CIFAR-100 in label order (alphabetical, as in `meta`).
CIFAR100_SUPERCLASSES: tuple[str, ...] = (
    "aquatic_mammals", "fish", "flowers", "food_containers",
    "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals",
    "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2")

# The official membership lists (super-class -> its 5 fine classes).
CIFAR100_SUPERCLASS_MEMBERS: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear",
                             "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone",
                                     "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road",
                                      "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain",
                                     "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee",
                                       "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree",
              "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

# CIFAR100_FINE_TO_COARSE[fine_label] = coarse_label (official `coarse_labels`).
CIFAR100_FINE_TO_COARSE: np.ndarray = np.array([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3,  # 0-9
    3, 14, 9, 18, 7, 11, 3, 9, 7, 11,  # 10-19
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15,  # 20-29
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5,  # 30-39
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10,  # 40-49
    16, 4, 17, 4, 2, 0, 17, 4, 18, 17,  # 50-59
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19,  # 60-69
    2, 10, 0, 1, 16, 12, 9, 13, 15, 13,  # 70-79
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19,  # 80-89
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,  # 90-99
], dtype=np.int32)
CIFAR100_FINE_TO_COARSE.setflags(write=False)

# Per-channel mean / std of the training images on the [0, 1] scale.
# MNIST, CIFAR-10/100: the values used throughout the literature. Fashion-MNIST
# and digits: computed from the training split. MNIST-1D is already
# standardized by its generator, so its statistics are (0, 1).
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar10_jpeg": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist1d": ((0.0,), (1.0,)),
    "digits": ((0.3057,), (0.3760,)),  # default train split, 0..16 -> 0..255
}
