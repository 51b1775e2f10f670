"""Analysis: samples become features, the model's view of each hop, and descriptors."""
