"""Synthetic worlds (SynthCXR, SynthDerm, synth-modalities): generated deterministically from a seed, on first
use, into the data root in the SAME on-disk formats as the real datasets, and read back by `medvl_core.data`'s
loaders (`open_dataset("synth-cxr")` etc.). This layer imports `data`; `data` never imports it."""
