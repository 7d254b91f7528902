"""Data for training and for building the local model: vocabularies, caption corpora, generated shards."""
