"""One config per paper: ``experiments/reproduce.py --config=configs/papers/<id>.py``."""
