"""Library: the catalogue of your tracks, how it is indexed, similarity and recommendations."""
