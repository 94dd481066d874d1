"""GAN training: the engine- and model-agnostic loop (loop.py), the two GAN recipes (tasks.py), checkpoints."""
