"""mixopt: choose what data to pretrain on, in what proportions, repeated how
often, and upsampled when, for a given compute budget."""

__version__ = "0.1.0"
