"""Training side of streamer: synthetic corpus, features, model training and export."""
